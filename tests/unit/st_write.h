/* st_write.h - test helper: writes small safetensors files, raw (possibly
 * broken) headers and whole Hugging Face model folders into a temp folder. */
#ifndef TESTS_ST_WRITE_H
#define TESTS_ST_WRITE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>
#include <ftw.h>

#include "common.h"

typedef struct {
    const char *name;
    eng_dtype dtype;
    int ndim;
    int64_t shape[4];
} stw_tensor;

/* The value written at element k of the ti-th tensor of a file: multiples of
 * 1/8 in [-4, 4), exact in F32, F16 and BF16. */
static inline float stw_value(int ti, int64_t k)
{
    return (float)((k * 7 + ti * 3) % 64 - 32) / 8.0f;
}

static inline const char *stw_dtype_name(eng_dtype t)
{
    return t == DT_F32 ? "F32" : t == DT_F16 ? "F16" : "BF16";
}

static inline int64_t stw_numel(const stw_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

/* Writes an 8-byte length, the header text (padded with spaces to a multiple
 * of 8 unless len_override >= 0, which is then written as the length as is),
 * then data_len bytes of data. Returns 0 on success. */
static inline int stw_raw(const char *path, const char *header, int64_t len_override,
                          const void *data, size_t data_len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t h = strlen(header), padded = h;
    if (len_override < 0)
        padded = (h + 7) & ~(size_t)7;
    uint64_t n = len_override < 0 ? padded : (uint64_t)len_override;
    unsigned char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)(n >> (8 * i));
    fwrite(le, 1, 8, f);
    fwrite(header, 1, h, f);
    for (size_t i = h; i < padded; i++)
        fputc(' ', f);
    if (data_len) {
        if (data)
            fwrite(data, 1, data_len, f);
        else
            for (size_t i = 0; i < data_len; i++)
                fputc(0, f);
    }
    return fclose(f);
}

/* Writes a well-formed file holding tensors t[0..n-1], values from stw_value. */
static inline int stw_file(const char *path, const stw_tensor *t, int n)
{
    size_t cap = 256 + (size_t)n * 256, len = 0, off = 0, total = 0;
    char *h = malloc(cap);
    len += (size_t)snprintf(h + len, cap - len, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < n; i++)
        total += (size_t)stw_numel(&t[i]) * dtype_size(t[i].dtype);
    unsigned char *data = calloc(1, total + 1);
    for (int i = 0; i < n; i++) {
        size_t nb = (size_t)stw_numel(&t[i]) * dtype_size(t[i].dtype);
        len += (size_t)snprintf(h + len, cap - len, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[",
                                t[i].name, stw_dtype_name(t[i].dtype));
        for (int d = 0; d < t[i].ndim; d++)
            len += (size_t)snprintf(h + len, cap - len, d ? ",%lld" : "%lld", (long long)t[i].shape[d]);
        len += (size_t)snprintf(h + len, cap - len, "],\"data_offsets\":[%zu,%zu]}", off, off + nb);
        for (int64_t k = 0; k < stw_numel(&t[i]); k++) {
            float v = stw_value(i, k);
            if (t[i].dtype == DT_F32) {
                memcpy(data + off + 4 * k, &v, 4);
            } else {
                uint16_t u = t[i].dtype == DT_F16 ? f32_to_f16(v) : f32_to_bf16(v);
                memcpy(data + off + 2 * k, &u, 2);
            }
        }
        off += nb;
    }
    snprintf(h + len, cap - len, "}");
    int rc = stw_raw(path, h, -1, data, total);
    free(h);
    free(data);
    return rc;
}

static inline int stw_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

/* ------------------------------------------------------------ model folders */

typedef struct {
    const char *model_type;      /* llama, mistral, qwen2, qwen3 */
    int dim, hidden, layers, heads, kv_heads, head_dim, vocab;
    bool tied;
    eng_dtype dtype;
    int shards;                  /* 0 or 1: model.safetensors; >= 2: index + shards */
    const char *omit;            /* a tensor name left out, or NULL */
    const char *reshape;         /* a tensor whose first dimension is doubled, or NULL */
    const char *extra;           /* an extra tensor name ((dim) F32), or NULL */
    const char *config_extra;    /* JSON fields written first (so they win over the
                                    defaults: cJSON reads a repeated key's first
                                    value), e.g. "\"rope_theta\":5e5,", or NULL */
} stw_model;

#define STW_MAX_TENSORS 512

/* Lists the tensors of m by their HF names into t (names malloc'd). */
static inline int stw_model_tensors(const stw_model *m, stw_tensor *t)
{
    int n = 0;
    const int64_t q = (int64_t)m->heads * m->head_dim, kv = (int64_t)m->kv_heads * m->head_dim;
    char buf[160];
#define ADD(nm, d0, d1)                                                                  \
    do {                                                                                 \
        int64_t a0 = (d0), a1 = (d1);                                                    \
        if (m->omit && !strcmp(m->omit, nm))                                             \
            break;                                                                       \
        if (m->reshape && !strcmp(m->reshape, nm))                                       \
            a0 *= 2;                                                                     \
        t[n] = (stw_tensor){.name = strdup(nm), .dtype = m->dtype, .ndim = a1 ? 2 : 1,   \
                            .shape = {a0, a1}};                                          \
        n++;                                                                             \
    } while (0)
    ADD("model.embed_tokens.weight", m->vocab, m->dim);
    for (int l = 0; l < m->layers; l++) {
#define L(sfx, d0, d1) do { snprintf(buf, sizeof buf, "model.layers.%d.%s", l, sfx); ADD(buf, d0, d1); } while (0)
        L("input_layernorm.weight", m->dim, 0);
        L("self_attn.q_proj.weight", q, m->dim);
        L("self_attn.k_proj.weight", kv, m->dim);
        L("self_attn.v_proj.weight", kv, m->dim);
        L("self_attn.o_proj.weight", m->dim, q);
        if (!strcmp(m->model_type, "qwen2")) {
            L("self_attn.q_proj.bias", q, 0);
            L("self_attn.k_proj.bias", kv, 0);
            L("self_attn.v_proj.bias", kv, 0);
        }
        if (!strcmp(m->model_type, "qwen3")) {
            L("self_attn.q_norm.weight", m->head_dim, 0);
            L("self_attn.k_norm.weight", m->head_dim, 0);
        }
        L("post_attention_layernorm.weight", m->dim, 0);
        L("mlp.gate_proj.weight", m->hidden, m->dim);
        L("mlp.up_proj.weight", m->hidden, m->dim);
        L("mlp.down_proj.weight", m->dim, m->hidden);
#undef L
    }
    ADD("model.norm.weight", m->dim, 0);
    if (!m->tied)
        ADD("lm_head.weight", m->vocab, m->dim);
    if (m->extra)
        t[n++] = (stw_tensor){.name = strdup(m->extra), .dtype = DT_F32, .ndim = 1, .shape = {m->dim}};
#undef ADD
    return n;
}

/* Writes config.json and the weights of m into dir (created if needed). */
static inline int stw_model_dir(const char *dir, const stw_model *m)
{
    char path[4096], cfg[2048];
    mkdir(dir, 0755);
    snprintf(cfg, sizeof cfg,
             "{%s\"architectures\":[\"X\"],\"model_type\":\"%s\",\"hidden_size\":%d,"
             "\"intermediate_size\":%d,\"num_hidden_layers\":%d,\"num_attention_heads\":%d,"
             "\"num_key_value_heads\":%d,\"head_dim\":%d,\"vocab_size\":%d,"
             "\"max_position_embeddings\":128,\"rms_norm_eps\":1e-05,\"hidden_act\":\"silu\","
             "\"tie_word_embeddings\":%s,\"bos_token_id\":1,\"eos_token_id\":2,"
             "\"torch_dtype\":\"%s\"}",
             m->config_extra ? m->config_extra : "", m->model_type, m->dim, m->hidden, m->layers, m->heads, m->kv_heads, m->head_dim,
             m->vocab, m->tied ? "true" : "false",
             m->dtype == DT_F32 ? "float32" : m->dtype == DT_F16 ? "float16" : "bfloat16");
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (stw_text(path, cfg))
        return -1;
    stw_tensor *t = calloc(STW_MAX_TENSORS, sizeof *t);
    int n = stw_model_tensors(m, t), rc = 0;
    if (m->shards < 2) {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        rc = stw_file(path, t, n);
    } else {
        size_t cap = 64 + (size_t)n * 200, len = 0;
        char *idx = malloc(cap);
        len += (size_t)snprintf(idx + len, cap - len, "{\"metadata\":{},\"weight_map\":{");
        int per = (n + m->shards - 1) / m->shards;
        for (int s = 0; s < m->shards && !rc; s++) {
            int a = s * per, b = a + per < n ? a + per : n;
            char shard[64];
            snprintf(shard, sizeof shard, "model-%05d-of-%05d.safetensors", s + 1, m->shards);
            snprintf(path, sizeof path, "%s/%s", dir, shard);
            if (b > a)
                rc = stw_file(path, t + a, b - a);
            for (int i = a; i < b; i++)
                len += (size_t)snprintf(idx + len, cap - len, "%s\"%s\":\"%s\"", i ? "," : "",
                                        t[i].name, shard);
        }
        snprintf(idx + len, cap - len, "}}");
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
        if (!rc)
            rc = stw_text(path, idx);
        free(idx);
    }
    for (int i = 0; i < n; i++)
        free((char *)t[i].name);
    free(t);
    return rc;
}

/* --------------------------------------------------------------- temp dirs */

static inline int stw_rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

/* Removes a folder tree. */
static inline void stw_rm_tree(const char *dir)
{
    nftw(dir, stw_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh temp folder; buf must hold 64 bytes. */
static inline const char *stw_tmpdir(char *buf, const char *tag)
{
    snprintf(buf, 64, "/tmp/attnscope-%s-XXXXXX", tag);
    return mkdtemp(buf);
}

#endif
