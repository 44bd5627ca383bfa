/* model_synth.c - random-weight models in memory with the exact shapes of
 * public models, so that benchmarks and tests need no download. */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

/* Shapes from each model's published config.json. */
typedef struct {
    const char *name;
    model_arch arch;
    const char *model_type;
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, head_dim, vocab, max_pos;
    float eps, theta;
    bool tied, bias, qk_norm;
    rope_kind rope;
    float rope_factor, rope_low, rope_high;
    int rope_orig;
} synth_shape;

static const synth_shape shapes[] = {
    /* HuggingFaceTB/SmolLM2-135M */
    {"smollm2-135m", ARCH_LLAMA, "llama", 576, 1536, 30, 9, 3, 64, 49152, 8192, 1e-5f, 100000.0f,
     true, false, false, ROPE_NONE, 0, 0, 0, 0},
    /* HuggingFaceTB/SmolLM2-360M */
    {"smollm2-360m", ARCH_LLAMA, "llama", 960, 2560, 32, 15, 5, 64, 49152, 8192, 1e-5f, 100000.0f,
     true, false, false, ROPE_NONE, 0, 0, 0, 0},
    /* Qwen/Qwen2.5-0.5B */
    {"qwen2.5-0.5b", ARCH_QWEN2, "qwen2", 896, 4864, 24, 14, 2, 64, 151936, 32768, 1e-6f, 1000000.0f,
     true, true, false, ROPE_NONE, 0, 0, 0, 0},
    /* TinyLlama/TinyLlama-1.1B-Chat-v1.0 */
    {"tinyllama-1.1b", ARCH_LLAMA, "llama", 2048, 5632, 22, 32, 4, 64, 32000, 2048, 1e-5f, 10000.0f,
     false, false, false, ROPE_NONE, 0, 0, 0, 0},
    /* meta-llama/Llama-3.2-1B */
    {"llama-3.2-1b", ARCH_LLAMA, "llama", 2048, 8192, 16, 32, 8, 64, 128256, 131072, 1e-5f, 500000.0f,
     true, false, false, ROPE_LLAMA3, 32.0f, 1.0f, 4.0f, 8192},
    /* Test shapes: odd sizes so that SIMD tails run, and every feature. */
    {"tiny", ARCH_LLAMA, "llama", 64, 176, 2, 4, 2, 16, 97, 256, 1e-5f, 10000.0f,
     false, false, false, ROPE_NONE, 0, 0, 0, 0},
    {"tiny-qwen2", ARCH_QWEN2, "qwen2", 48, 80, 2, 4, 1, 12, 101, 256, 1e-6f, 1000000.0f,
     true, true, false, ROPE_NONE, 0, 0, 0, 0},
    {"tiny-qwen3", ARCH_QWEN3, "qwen3", 40, 96, 3, 4, 2, 24, 89, 256, 1e-6f, 1000000.0f,
     true, false, true, ROPE_NONE, 0, 0, 0, 0},
    {"tiny-llama3", ARCH_LLAMA, "llama", 64, 128, 2, 8, 2, 8, 97, 256, 1e-5f, 500000.0f,
     true, false, false, ROPE_LLAMA3, 8.0f, 1.0f, 4.0f, 32},
    /* head_dim 128 (as Qwen3 and Llama-3-8B), wider than dim / heads */
    {"tiny-hd128", ARCH_QWEN3, "qwen3", 96, 160, 2, 2, 1, 128, 89, 1024, 1e-6f, 1000000.0f,
     true, false, true, ROPE_NONE, 0, 0, 0, 0},
};

typedef struct {
    void *blob;                 /* every weight, back to back */
    layer_weights_t *layers;
} synth_priv;

static void synth_free(model_t *m)
{
    synth_priv *p = m->priv;
    if (!p)
        return;
    eng_free(p->blob);
    eng_free(p->layers);
    eng_free(p);
    m->priv = NULL;
}

/* xorshift64*: fast, seeded, good enough for random weights. */
static uint64_t rng_next(uint64_t *st)
{
    *st ^= *st >> 12;
    *st ^= *st << 25;
    *st ^= *st >> 27;
    return *st * 0x2545F4914F6CDD1DULL;
}

static float rng_uniform(uint64_t *st)   /* in [-1, 1) */
{
    return (float)((rng_next(st) >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

typedef struct {
    uint8_t *cursor;
    eng_dtype dtype;
    uint64_t rng;
} filler;

/* Carves a tensor out of the blob and fills it with center + spread * U(-1, 1). */
static tensor_t make_tensor(filler *f, int ndim, int64_t d0, int64_t d1, float center, float spread)
{
    tensor_t t = {.data = f->cursor, .dtype = f->dtype, .ndim = ndim, .shape = {d0, ndim > 1 ? d1 : 0}};
    size_t n = (size_t)d0 * (size_t)(ndim > 1 ? d1 : 1);
    for (size_t i = 0; i < n; i++) {
        float v = center + spread * rng_uniform(&f->rng);
        switch (f->dtype) {
        case DT_BF16: ((uint16_t *)f->cursor)[i] = f32_to_bf16(v); break;
        case DT_F16: ((uint16_t *)f->cursor)[i] = f32_to_f16(v); break;
        default: ((float *)f->cursor)[i] = v; break;
        }
    }
    f->cursor += n * dtype_size(f->dtype);
    return t;
}

static size_t shape_elems(const synth_shape *sh)
{
    size_t q_dim = (size_t)sh->n_heads * sh->head_dim, kv_dim = (size_t)sh->n_kv_heads * sh->head_dim;
    size_t d = (size_t)sh->dim, h = (size_t)sh->hidden_dim;
    size_t per_layer = 2 * d + q_dim * d + 2 * kv_dim * d + d * q_dim + 3 * h * d;
    if (sh->bias)
        per_layer += q_dim + 2 * kv_dim;
    if (sh->qk_norm)
        per_layer += 2 * (size_t)sh->head_dim;
    size_t n = (size_t)sh->vocab * d + d + per_layer * (size_t)sh->n_layers;
    if (!sh->tied)
        n += (size_t)sh->vocab * d;
    return n;
}

int model_synthetic(model_t **out, const char *name, eng_dtype dtype, uint64_t seed, eng_err *err)
{
    *out = NULL;
    const synth_shape *sh = NULL;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        if (name && strcmp(name, shapes[i].name) == 0)
            sh = &shapes[i];
    if (!sh)
        return eng_fail(err, ENG_EINPUT,
                        "unknown synthetic model '%s' (smollm2-135m, smollm2-360m, qwen2.5-0.5b, "
                        "tinyllama-1.1b, llama-3.2-1b, tiny, tiny-qwen2, tiny-qwen3, tiny-llama3, tiny-hd128)",
                        name ? name : "");
    if (dtype != DT_F32 && dtype != DT_F16 && dtype != DT_BF16)
        return eng_fail(err, ENG_EINPUT, "synthetic model: unknown dtype %d", (int)dtype);

    model_t *m = eng_calloc(1, sizeof *m);
    synth_priv *p = eng_calloc(1, sizeof *p);
    size_t bytes = shape_elems(sh) * dtype_size(dtype);
    if (p) {
        p->blob = eng_malloc(bytes);
        p->layers = eng_calloc((size_t)sh->n_layers, sizeof *p->layers);
        if (p->blob) {   /* transparent huge pages for the weights: streaming 269 MB through 4 KB pages costs a TLB miss every 4 KB (decode ~10-20% slower here) */
            uintptr_t a = ((uintptr_t)p->blob + (2u << 20) - 1) & ~(uintptr_t)((2u << 20) - 1);
            uintptr_t b = ((uintptr_t)p->blob + (bytes)) & ~(uintptr_t)((2u << 20) - 1);
            if (b > a)
                madvise((void *)a, b - a, MADV_HUGEPAGE);
        }
    }
    if (!m || !p || !p->blob || !p->layers) {
        if (p) {
            eng_free(p->blob);
            eng_free(p->layers);
        }
        eng_free(p);
        eng_free(m);
        return eng_fail(err, ENG_ENOMEM, "synthetic model %s: cannot allocate %zu bytes of weights", name, bytes);
    }
    m->priv = p;
    m->priv_free = synth_free;
    snprintf(m->name, sizeof m->name, "%s", sh->name);
    m->weights_bytes = bytes;
    m->file_bytes = 0;

    config_t *c = &m->cfg;
    c->arch = sh->arch;
    snprintf(c->model_type, sizeof c->model_type, "%s", sh->model_type);
    c->dim = sh->dim;
    c->hidden_dim = sh->hidden_dim;
    c->n_layers = sh->n_layers;
    c->n_heads = sh->n_heads;
    c->n_kv_heads = sh->n_kv_heads;
    c->head_dim = sh->head_dim;
    c->vocab_size = sh->vocab;
    c->max_seq_len = sh->max_pos;
    c->norm_eps = sh->eps;
    c->rope_theta = sh->theta;
    c->rope_type = sh->rope;
    c->rope_factor = sh->rope_factor;
    c->rope_low_freq = sh->rope_low;
    c->rope_high_freq = sh->rope_high;
    c->rope_orig_max_pos = sh->rope_orig;
    c->tie_embeddings = sh->tied;
    c->attn_bias = sh->bias;
    c->qk_norm = sh->qk_norm;
    c->bos_id = 1;
    c->eos_ids[0] = 2;
    c->n_eos = 1;
    c->dtype = dtype;

    /* Matrices get variance ~1/fan_in so activations keep their scale; norm
     * weights and biases sit away from 1 and 0 so that a missed one shows. */
    filler f = {p->blob, dtype, seed * 0x9E3779B97F4A7C15ULL + 0x1234567ULL};
    int64_t d = c->dim, h = c->hidden_dim, q_dim = config_q_dim(c), kv_dim = config_kv_dim(c);
    float sd = sqrtf(3.0f / (float)d), sq = sqrtf(3.0f / (float)q_dim), sh_ = sqrtf(3.0f / (float)h);
    m->w.embed = make_tensor(&f, 2, c->vocab_size, d, 0.0f, 1.0f);
    m->w.final_norm = make_tensor(&f, 1, d, 0, 1.0f, 0.2f);
    m->w.lm_head = sh->tied ? m->w.embed : make_tensor(&f, 2, c->vocab_size, d, 0.0f, sd);
    m->w.layers = p->layers;
    for (int l = 0; l < c->n_layers; l++) {
        layer_weights_t *lw = &p->layers[l];
        lw->attn_norm = make_tensor(&f, 1, d, 0, 1.0f, 0.2f);
        lw->wq = make_tensor(&f, 2, q_dim, d, 0.0f, sd);
        lw->wk = make_tensor(&f, 2, kv_dim, d, 0.0f, sd);
        lw->wv = make_tensor(&f, 2, kv_dim, d, 0.0f, sd);
        lw->wo = make_tensor(&f, 2, d, q_dim, 0.0f, sq);
        if (sh->bias) {
            lw->bq = make_tensor(&f, 1, q_dim, 0, 0.0f, 0.5f);
            lw->bk = make_tensor(&f, 1, kv_dim, 0, 0.0f, 0.5f);
            lw->bv = make_tensor(&f, 1, kv_dim, 0, 0.0f, 0.5f);
        }
        if (sh->qk_norm) {
            lw->q_norm = make_tensor(&f, 1, c->head_dim, 0, 1.0f, 0.2f);
            lw->k_norm = make_tensor(&f, 1, c->head_dim, 0, 1.0f, 0.2f);
        }
        lw->ffn_norm = make_tensor(&f, 1, d, 0, 1.0f, 0.2f);
        lw->w_gate = make_tensor(&f, 2, h, d, 0.0f, sd);
        lw->w_up = make_tensor(&f, 2, h, d, 0.0f, sd);
        lw->w_down = make_tensor(&f, 2, d, h, 0.0f, sh_);
    }
    *out = m;
    return ENG_OK;
}

/* The generic close. model_load.c may define the same function (a strong
 * definition then wins over this weak one); both do the same thing. */
__attribute__((weak)) void model_close(model_t *m)
{
    if (!m)
        return;
    if (m->priv_free)
        m->priv_free(m);
    eng_free(m);
}
