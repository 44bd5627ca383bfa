/* backend.h - the compute function table the forward pass calls for its heavy
 * loops (matrix products and attention). cpu/ fills the per-call entries and
 * session.c's forward() drives them; the CUDA backend (cuda/) instead runs
 * whole forward passes on the device, with the KV cache kept there, through
 * the forward entry. */
#ifndef ENGINE_BACKEND_H
#define ENGINE_BACKEND_H

#include "common.h"

/* Sizes a backend context must be ready for, fixed at session creation. */
typedef struct {
    int n_threads;      /* 0 = all online cores */
    int64_t max_in;     /* widest input of any weight matrix (columns) */
    int max_rows;       /* most activation rows in one call (the prefill chunk) */
    int max_keys;       /* most keys one attention call sees (the context size) */
    int n_heads;        /* query heads (a decode step scores a GQA group at once) */
} bk_sizes;

/* One y = W x product; several share one dispatch (q/k/v, gate/up). */
typedef struct {
    float *y;             /* [rows of w] */
    const tensor_t *w;    /* (rows, cols), any stored dtype */
    const float *x;       /* [cols] */
} bk_matvec;

/* Causal attention of T query rows at positions pos0..pos0+T-1 over keys
 * 0..pos0+T-1 read from one layer of the KV cache. Query head h reads KV head
 * h / (n_heads / n_kv_heads): heads share K/V, nothing is copied. */
typedef struct {
    const float *q;       /* [T][n_heads * head_dim], RoPE applied */
    const float *k, *v;   /* the layer's cache: [n_kv_heads][kv_stride][head_dim] */
    int kv_stride;        /* positions per KV head in the cache (its capacity) */
    float *out;           /* [T][n_heads * head_dim] */
    int T, pos0;
    int n_heads, n_kv_heads, head_dim;
    float scale;          /* 1 / sqrt(head_dim) */
    /* Observer (probs NULL = off): probs[(h * probs_nq + probs_row0 + i) *
     * probs_nk + j] receives head h's probability of key j for query row i;
     * keys past the row's position are written as 0. */
    float *probs;
    int probs_row0, probs_nq, probs_nk;
} bk_attention;

/* One chunk of the forward pass run entirely by the backend: positions
 * pos0..pos0+T-1 (tokens[0..T-1]) through every layer, their keys and values
 * into the backend's own cache, which holds current K/V for 0..pos0-1. Rows
 * r >= out_row0 get logits in out[(r - out_row0) * vocab]. probs as in
 * bk_attention, per layer l at probs + l * n_heads * probs_nq * probs_nk. */
typedef struct model model_t;
typedef struct {
    const model_t *m;
    const float *inv_freq;   /* (head_dim / 2), rope scaling applied */
    const int *tokens;
    int pos0, T, out_row0;
    float *out;
    bool out_is_session;     /* out lives as long as the session: may be pinned */
    float *probs;
    int probs_row0, probs_nq, probs_nk;
} bk_forward;

typedef struct {
    const char *name;
    /* Creates a context (threads, scratch) for the given sizes. */
    int (*ctx_new)(void **ctx, const bk_sizes *sz, eng_err *err);
    void (*ctx_free)(void *ctx);                    /* accepts NULL */
    int (*n_threads)(const void *ctx);
    /* y = W x for each job, all jobs' rows split across the threads. */
    void (*matvec)(void *ctx, const bk_matvec *jobs, int n_jobs);
    /* Y[T][rows] = X[T][cols] W^T: GEMM, weights widened block by block into
     * bounded scratch. T <= max_rows. */
    void (*matmul)(void *ctx, float *y, const float *x, int T, const tensor_t *w);
    void (*attention)(void *ctx, const bk_attention *a);
    /* Either the three calls above (NULL here) or this (NULL above): the
     * whole chunk on the backend's device. Failures are kept in the context
     * (cuda_ctx_status) and the outputs are then NaN. */
    void (*forward)(void *ctx, const bk_forward *f);
} backend_ops;

extern const backend_ops backend_cpu;

#endif
