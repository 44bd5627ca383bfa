/* model.h - a loaded (or synthetic) model: its config and borrowed weight views. */
#ifndef ENGINE_MODEL_H
#define ENGINE_MODEL_H

#include "common.h"
#include "config.h"

/* Shapes are PyTorch's (out_features, in_features), as stored in the file. */
typedef struct {
    tensor_t attn_norm;   /* (dim) */
    tensor_t wq;          /* (n_heads*head_dim, dim) */
    tensor_t wk;          /* (kv_dim, dim) */
    tensor_t wv;          /* (kv_dim, dim) */
    tensor_t wo;          /* (dim, n_heads*head_dim) */
    tensor_t bq, bk, bv;  /* (q_dim), (kv_dim), (kv_dim): qwen2 / attention_bias, else absent */
    tensor_t q_norm;      /* (head_dim): qwen3, else absent */
    tensor_t k_norm;      /* (head_dim): qwen3, else absent */
    tensor_t ffn_norm;    /* (dim) post_attention_layernorm */
    tensor_t w_gate;      /* (hidden_dim, dim) */
    tensor_t w_up;        /* (hidden_dim, dim) */
    tensor_t w_down;      /* (dim, hidden_dim) */
} layer_weights_t;

typedef struct {
    tensor_t embed;       /* (vocab, dim) */
    tensor_t final_norm;  /* (dim) */
    tensor_t lm_head;     /* (vocab, dim); the same view as embed when tied */
    layer_weights_t *layers;  /* n_layers entries */
} weights_t;

typedef struct model model_t;

struct model {
    config_t cfg;
    weights_t w;
    char name[64];            /* folder basename or synthetic shape name */
    size_t weights_bytes;     /* bytes of all weight tensors as stored */
    size_t file_bytes;        /* bytes of the safetensors file(s) */
    void *priv;               /* loader- or synthetic-private state */
    void (*priv_free)(model_t *m);
};

/* Opens a Hugging Face folder: config.json, generation_config.json (optional),
 * model.safetensors or model.safetensors.index.json + shards. Weights stay
 * mapped in their stored dtype. On failure returns ENG_EINPUT (bad folder or
 * file: message names the file and tensor/field), ENG_EIO or ENG_ENOMEM and
 * *out is NULL. Free with model_close. */
int model_open(model_t **out, const char *dir, eng_err *err);

/* Builds a random-weight model in memory with the exact shape of a public
 * model: "smollm2-135m", "smollm2-360m", "qwen2.5-0.5b", "tinyllama-1.1b",
 * "llama-3.2-1b" (and "tiny" for tests). dtype is the stored dtype. */
int model_synthetic(model_t **out, const char *name, eng_dtype dtype, uint64_t seed, eng_err *err);

/* Frees everything model_open/model_synthetic allocated; accepts NULL. */
void model_close(model_t *m);

#endif
