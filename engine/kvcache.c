/* kvcache.c - allocation, accounting and writes of the KV cache (layout drawn
 * in kvcache.h). */
#include "kvcache.h"

#include <string.h>

int kv_init(kvcache_t *kv, const config_t *c, int capacity, eng_err *err)
{
    memset(kv, 0, sizeof *kv);
    size_t n = (size_t)c->n_layers * c->n_kv_heads * (size_t)capacity * c->head_dim;
    kv->k = eng_malloc(n * sizeof(float));
    kv->v = eng_malloc(n * sizeof(float));
    if (!kv->k || !kv->v) {
        eng_free(kv->k);
        eng_free(kv->v);
        kv->k = kv->v = NULL;
        return eng_fail(err, ENG_ENOMEM, "KV cache: cannot allocate %zu bytes for %d positions",
                        2 * n * sizeof(float), capacity);
    }
    kv->n_layers = c->n_layers;
    kv->n_kv_heads = c->n_kv_heads;
    kv->head_dim = c->head_dim;
    kv->capacity = capacity;
    return ENG_OK;
}

void kv_release(kvcache_t *kv)
{
    eng_free(kv->k);
    eng_free(kv->v);
    memset(kv, 0, sizeof *kv);
}

size_t kv_bytes(const kvcache_t *kv, int n_tokens)
{
    return 2 * (size_t)kv->n_layers * kv->n_kv_heads * kv->head_dim * (size_t)n_tokens * sizeof(float);
}

void kv_store(kvcache_t *kv, int layer, int pos0, int T, const float *k_rows, const float *v_rows)
{
    int hd = kv->head_dim, kv_dim = kv->n_kv_heads * hd;
    float *kl = kv_layer_k(kv, layer), *vl = kv_layer_v(kv, layer);
    for (int i = 0; i < T; i++)
        for (int g = 0; g < kv->n_kv_heads; g++) {
            size_t dst = ((size_t)g * kv->capacity + pos0 + i) * hd;
            memcpy(kl + dst, k_rows + (size_t)i * kv_dim + (size_t)g * hd, (size_t)hd * sizeof(float));
            memcpy(vl + dst, v_rows + (size_t)i * kv_dim + (size_t)g * hd, (size_t)hd * sizeof(float));
        }
}
