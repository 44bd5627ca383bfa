/* config.h - a Hugging Face config.json mapped to the one struct the engine uses. */
#ifndef ENGINE_CONFIG_H
#define ENGINE_CONFIG_H

#include "common.h"

typedef enum { ARCH_LLAMA = 0, ARCH_MISTRAL, ARCH_QWEN2, ARCH_QWEN3 } model_arch;
typedef enum { ROPE_NONE = 0, ROPE_LINEAR, ROPE_LLAMA3 } rope_kind;

#define CONFIG_MAX_EOS 8

/* Dimension names follow llama2.c and are used everywhere in the engine. */
typedef struct {
    model_arch arch;
    char model_type[32];     /* as written in config.json */
    int dim;                 /* hidden_size */
    int hidden_dim;          /* intermediate_size */
    int n_layers;            /* num_hidden_layers */
    int n_heads;             /* num_attention_heads */
    int n_kv_heads;          /* num_key_value_heads (defaults to n_heads) */
    int head_dim;            /* head_dim (defaults to dim / n_heads) */
    int vocab_size;
    int max_seq_len;         /* max_position_embeddings */
    float norm_eps;          /* rms_norm_eps (default 1e-6) */
    float rope_theta;        /* default 10000 */
    rope_kind rope_type;
    float rope_factor;       /* linear and llama3 */
    float rope_low_freq;     /* llama3: low_freq_factor */
    float rope_high_freq;    /* llama3: high_freq_factor */
    int rope_orig_max_pos;   /* llama3: original_max_position_embeddings */
    bool tie_embeddings;     /* tie_word_embeddings: no lm_head.weight */
    bool attn_bias;          /* q/k/v bias (qwen2, or attention_bias) */
    bool qk_norm;            /* per-head RMSNorm of q and k before RoPE (qwen3) */
    int bos_id;              /* -1 if none */
    int eos_ids[CONFIG_MAX_EOS];
    int n_eos;
    eng_dtype dtype;         /* torch_dtype as declared (informational) */
} config_t;

/* Derived sizes. */
static inline int config_kv_dim(const config_t *c) { return c->n_kv_heads * c->head_dim; }
static inline int config_q_dim(const config_t *c) { return c->n_heads * c->head_dim; }
static inline int config_kv_mul(const config_t *c) { return c->n_heads / c->n_kv_heads; }

/* Parses config.json text (len bytes; need not be NUL-terminated). fname is
 * used only in messages. Returns ENG_OK or ENG_EINPUT / ENG_ENOMEM with one
 * line in err naming the field at fault. */
int config_parse(config_t *c, const char *json, size_t len, const char *fname, eng_err *err);

/* Reads config.json (and generation_config.json, if present) from folder dir:
 * config_parse + config_merge_generation. Same errors. */
int config_load(config_t *c, const char *dir, eng_err *err);

/* Reads DIR/generation_config.json if present and adds its eos ids (and bos)
 * to c. A missing file is not an error; a malformed one is ENG_EINPUT. */
int config_merge_generation(config_t *c, const char *dir, eng_err *err);

/* Reads a whole regular file of at most max bytes into a NUL-terminated
 * eng_malloc'd buffer (*buf, *len without the NUL; free with eng_free).
 * A missing file, a folder, or a file over max bytes is ENG_EINPUT (the
 * message names path); a read error ENG_EIO; *buf is NULL on failure. */
int config_read_file(const char *path, size_t max, char **buf, size_t *len, eng_err *err);

#endif
