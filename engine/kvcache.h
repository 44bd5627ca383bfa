/* kvcache.h - the KV cache: every layer's keys (after RoPE) and values for
 * every position computed so far, in f32, allocated once at its full capacity.
 *
 *   k: [n_layers][n_kv_heads][capacity][head_dim]     (v: the same)
 *
 *   layer 0 ┬ kv head 0: pos 0 [hd floats] pos 1 [..] ... pos cap-1 [..]
 *           ├ kv head 1: pos 0 [..]       pos 1 [..] ... pos cap-1 [..]
 *           ...
 *   layer 1 ┬ ...
 *
 * One KV head's keys are contiguous, so attention reads them as one matrix
 * (n_keys x head_dim) and every query head of its GQA group reads the same
 * bytes: K/V are never repeated per query head. */
#ifndef ENGINE_KVCACHE_H
#define ENGINE_KVCACHE_H

#include "common.h"
#include "config.h"

typedef struct {
    int n_layers, n_kv_heads, head_dim, capacity;
    float *k, *v;
} kvcache_t;

/* Allocates both tensors for `capacity` positions. ENG_ENOMEM with a message
 * naming the size on failure (kv left zeroed). */
int kv_init(kvcache_t *kv, const config_t *c, int capacity, eng_err *err);
void kv_release(kvcache_t *kv);                 /* accepts a zeroed kv */

/* The start of one layer's keys / values: [n_kv_heads][capacity][head_dim]. */
static inline float *kv_layer_k(const kvcache_t *kv, int layer)
{
    return kv->k + (size_t)layer * kv->n_kv_heads * kv->capacity * kv->head_dim;
}
static inline float *kv_layer_v(const kvcache_t *kv, int layer)
{
    return kv->v + (size_t)layer * kv->n_kv_heads * kv->capacity * kv->head_dim;
}

/* Bytes that n_tokens positions occupy (keys and values, all layers). */
size_t kv_bytes(const kvcache_t *kv, int n_tokens);

/* Stores T positions' keys and values, given as rows [T][n_kv_heads*head_dim]
 * (the layout the K/V projections produce), at positions pos0..pos0+T-1. */
void kv_store(kvcache_t *kv, int layer, int pos0, int T, const float *k_rows, const float *v_rows);

#endif
