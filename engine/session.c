/* session.c - running a model: the forward pass (top to bottom, like the
 * math), the KV cache switched on and off, logits, the attention observer and
 * timings. The heavy loops go through the backend table (backend.h). */
#include "session.h"
#include "backend.h"
#include "kvcache.h"
#include "cpu/kernels.h"
#ifdef ATTNSCOPE_CUDA
#include "cuda/cuda.h"
#include <stdio.h>
#endif

#include <math.h>
#include <stdio.h>
#include <string.h>

#define PREFILL_CHUNK 512   /* most positions run through the network at once */
#define DEFAULT_MAX_SEQ 4096

/* Small per-layer vectors widened to f32 once (norm weights, biases): a few
 * KB per layer. The matrices stay in their stored dtype. */
typedef struct {
    float *attn_norm;     /* (dim) */
    float *ffn_norm;      /* (dim) */
    float *bq, *bk, *bv;  /* (q_dim), (kv_dim), (kv_dim) or NULL */
    float *q_norm;        /* (head_dim) or NULL */
    float *k_norm;        /* (head_dim) or NULL */
} layer_vecs;

struct session {
    const model_t *m;
    const config_t *c;
    int max_seq;          /* capacity in tokens */
    int len;              /* tokens in the context */
    int kv_valid;         /* positions whose K/V in the cache are current */
    int *tokens;          /* (max_seq) */
    bool cache_on;
    bool observe;
    kvcache_t kv;

    const backend_ops *bk;
    void *bk_ctx;

    /* Run buffers for one chunk of up to `chunk` positions, allocated once. */
    int chunk;
    float *x;             /* (chunk, dim) the residual stream */
    float *xb;            /* (chunk, dim) normed input of a block */
    float *xb2;           /* (chunk, dim) a block's output */
    float *q;             /* (chunk, q_dim) */
    float *k, *v;         /* (chunk, kv_dim) this chunk's new keys and values */
    float *att;           /* (chunk, q_dim) attention output, before o_proj */
    float *hb, *hb2;      /* (chunk, hidden_dim) gate and up */
    float *rope_cos;      /* (chunk, head_dim / 2) */
    float *rope_sin;      /* (chunk, head_dim / 2) */
    float *inv_freq;      /* (head_dim / 2) with rope scaling applied */
    float *logits;        /* (vocab) of the last position */
    layer_vecs *lv;       /* (n_layers) */
    float *final_norm;    /* (dim) */
    float *vecs;          /* the storage behind lv and final_norm */
    size_t run_bytes;

    /* Observer: (n_layers, n_heads, obs_nq, obs_nk) of the last eval. */
    float *obs;
    size_t obs_cap;       /* floats allocated */
    int obs_q0, obs_nq, obs_nk;
    bool obs_valid;

    session_timing timing;
};

/* ---------------------------------------------------------------- helpers */

static float *alloc_f32(session_t *s, size_t n)
{
    s->run_bytes += n * sizeof(float);
    return eng_malloc(n * sizeof(float));
}

/* o = x / sqrt(mean(x^2) + eps) * w, in f32 as HF's LlamaRMSNorm computes it. */
static void rmsnorm(float *o, const float *x, const float *w, int n, float eps)
{
    float ss = kern_dot(x, x, n) / (float)n;
    float r = 1.0f / sqrtf(ss + eps);
    for (int i = 0; i < n; i++)
        o[i] = w[i] * (x[i] * r);
}

/* HF rotate_half pairing: dimension i turns with dimension i + head_dim/2. */
static void rope(float *v, const float *cs, const float *sn, int half)
{
    for (int i = 0; i < half; i++) {
        float a = v[i], b = v[i + half];
        v[i] = a * cs[i] - b * sn[i];
        v[i + half] = b * cs[i] + a * sn[i];
    }
}

static void add_bias(float *y, const float *b, int T, int n)
{
    for (int t = 0; t < T; t++)
        for (int i = 0; i < n; i++)
            y[(size_t)t * n + i] += b[i];
}

/* y = x W^T for T rows: matrix-vector for one row, GEMM for more. */
static void linear(session_t *s, float *y, const float *x, int T, const tensor_t *w)
{
    if (T == 1) {
        bk_matvec job = {y, w, x};
        s->bk->matvec(s->bk_ctx, &job, 1);
    } else {
        s->bk->matmul(s->bk_ctx, y, x, T, w);
    }
}

/* Two or three products of the same input in one dispatch when decoding. */
static void linear_shared(session_t *s, int n, float **y, const float *x, int T, const tensor_t **w)
{
    if (T == 1) {
        bk_matvec jobs[3];
        for (int i = 0; i < n; i++)
            jobs[i] = (bk_matvec){y[i], w[i], x};
        s->bk->matvec(s->bk_ctx, jobs, n);
    } else {
        for (int i = 0; i < n; i++)
            s->bk->matmul(s->bk_ctx, y[i], x, T, w[i]);
    }
}

/* inv_freq_i = theta^(-2i/d), then llama3 or linear scaling (REFERENCE.md;
 * transformers' modeling_rope_utils), in f32 like transformers. */
static void rope_init(session_t *s)
{
    const config_t *c = s->c;
    int half = c->head_dim / 2;
    for (int i = 0; i < half; i++) {
        float f = (float)(1.0 / pow((double)c->rope_theta, (double)(2 * i) / (double)c->head_dim));
        if (c->rope_type == ROPE_LINEAR && c->rope_factor > 0) {
            f /= c->rope_factor;
        } else if (c->rope_type == ROPE_LLAMA3 && c->rope_factor > 0) {
            float L = (float)c->rope_orig_max_pos, lo = c->rope_low_freq, hi = c->rope_high_freq;
            float wavelen = 2.0f * (float)M_PI / f;
            float w_lo = L / lo, w_hi = L / hi;
            if (wavelen > w_lo) {
                f = f / c->rope_factor;
            } else if (wavelen >= w_hi) {
                float sm = (L / wavelen - lo) / (hi - lo);
                f = (1.0f - sm) * f / c->rope_factor + sm * f;
            }
        }
        s->inv_freq[i] = f;
    }
}

/* cos/sin of (position * inv_freq) for the chunk's positions; the angle is
 * rounded to f32 first, as transformers computes it. */
static void rope_tables(session_t *s, int pos0, int T)
{
    int half = s->c->head_dim / 2;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < half; i++) {
            float ang = (float)(pos0 + t) * s->inv_freq[i];
            s->rope_cos[(size_t)t * half + i] = (float)cos((double)ang);
            s->rope_sin[(size_t)t * half + i] = (float)sin((double)ang);
        }
}

/* ----------------------------------------------------------- the forward */

/* Runs positions pos0..pos0+T-1 (tokens from s->tokens) through the network,
 * writing their keys and values into the cache, which must hold current K/V
 * for positions 0..pos0-1. Rows r >= out_row0 of the chunk get logits in
 * out[(r - out_row0) * vocab]. */
static void forward(session_t *s, int pos0, int T, int out_row0, float *out, int obs_row0)
{
    if (s->bk->forward) {   /* the backend runs the whole chunk on its device */
        bk_forward f = {.m = s->m, .inv_freq = s->inv_freq, .tokens = s->tokens + pos0, .pos0 = pos0, .T = T,
                        .out_row0 = out_row0, .out = out, .out_is_session = out == s->logits};
        if (s->observe) {
            f.probs = s->obs;
            f.probs_row0 = obs_row0;
            f.probs_nq = s->obs_nq;
            f.probs_nk = s->obs_nk;
        }
        s->bk->forward(s->bk_ctx, &f);
        return;
    }
    const config_t *c = s->c;
    const weights_t *w = &s->m->w;
    int dim = c->dim, hidden = c->hidden_dim, hd = c->head_dim, half = hd / 2;
    int q_dim = config_q_dim(c), kv_dim = config_kv_dim(c);
    float eps = c->norm_eps;

    /* Token embeddings: x[t] = embed[token]. */
    for (int t = 0; t < T; t++)
        kern_row_f32(s->x + (size_t)t * dim, &w->embed, s->tokens[pos0 + t], dim);
    rope_tables(s, pos0, T);

    for (int l = 0; l < c->n_layers; l++) {
        const layer_weights_t *lw = &w->layers[l];
        const layer_vecs *lv = &s->lv[l];

        /* Attention block: xb = RMSNorm(x); q, k, v = xb Wq^T, xb Wk^T, xb Wv^T (+ bias). */
        for (int t = 0; t < T; t++)
            rmsnorm(s->xb + (size_t)t * dim, s->x + (size_t)t * dim, lv->attn_norm, dim, eps);
        float *qkv_out[3] = {s->q, s->k, s->v};
        const tensor_t *qkv_w[3] = {&lw->wq, &lw->wk, &lw->wv};
        linear_shared(s, 3, qkv_out, s->xb, T, qkv_w);
        if (lv->bq) {
            add_bias(s->q, lv->bq, T, q_dim);
            add_bias(s->k, lv->bk, T, kv_dim);
            add_bias(s->v, lv->bv, T, kv_dim);
        }

        /* qwen3: RMSNorm over each head of q and k, before RoPE. */
        if (lv->q_norm) {
            for (int t = 0; t < T; t++) {
                for (int h = 0; h < c->n_heads; h++) {
                    float *qh = s->q + (size_t)t * q_dim + (size_t)h * hd;
                    rmsnorm(qh, qh, lv->q_norm, hd, eps);
                }
                for (int h = 0; h < c->n_kv_heads; h++) {
                    float *kh = s->k + (size_t)t * kv_dim + (size_t)h * hd;
                    rmsnorm(kh, kh, lv->k_norm, hd, eps);
                }
            }
        }

        /* RoPE on every head of q and k at the token's position. */
        for (int t = 0; t < T; t++) {
            const float *cs = s->rope_cos + (size_t)t * half, *sn = s->rope_sin + (size_t)t * half;
            for (int h = 0; h < c->n_heads; h++)
                rope(s->q + (size_t)t * q_dim + (size_t)h * hd, cs, sn, half);
            for (int h = 0; h < c->n_kv_heads; h++)
                rope(s->k + (size_t)t * kv_dim + (size_t)h * hd, cs, sn, half);
        }

        /* The cache receives this chunk's keys and values; attention then
         * reads all keys 0..pos0+T-1 from it. */
        kv_store(&s->kv, l, pos0, T, s->k, s->v);

        /* att = softmax(q K^T / sqrt(head_dim), causal) V, per head, GQA. */
        bk_attention a = {
            .q = s->q, .k = kv_layer_k(&s->kv, l), .v = kv_layer_v(&s->kv, l),
            .kv_stride = s->kv.capacity, .out = s->att, .T = T, .pos0 = pos0,
            .n_heads = c->n_heads, .n_kv_heads = c->n_kv_heads, .head_dim = hd,
            .scale = 1.0f / sqrtf((float)hd),
        };
        if (s->observe) {
            a.probs = s->obs + (size_t)l * c->n_heads * s->obs_nq * s->obs_nk;
            a.probs_row0 = obs_row0;
            a.probs_nq = s->obs_nq;
            a.probs_nk = s->obs_nk;
        }
        s->bk->attention(s->bk_ctx, &a);

        /* x += att Wo^T */
        linear(s, s->xb2, s->att, T, &lw->wo);
        for (size_t i = 0; i < (size_t)T * dim; i++)
            s->x[i] += s->xb2[i];

        /* Feed-forward block: x += (silu(xb Wgate^T) * (xb Wup^T)) Wdown^T. */
        for (int t = 0; t < T; t++)
            rmsnorm(s->xb + (size_t)t * dim, s->x + (size_t)t * dim, lv->ffn_norm, dim, eps);
        float *gu_out[2] = {s->hb, s->hb2};
        const tensor_t *gu_w[2] = {&lw->w_gate, &lw->w_up};
        linear_shared(s, 2, gu_out, s->xb, T, gu_w);
        kern_silu_mul(s->hb, s->hb2, (size_t)T * hidden);
        linear(s, s->xb2, s->hb, T, &lw->w_down);
        for (size_t i = 0; i < (size_t)T * dim; i++)
            s->x[i] += s->xb2[i];
    }

    /* Final norm and lm_head, only for the rows whose logits are wanted. */
    if (out_row0 >= T)
        return;
    for (int t = out_row0; t < T; t++)
        rmsnorm(s->xb + (size_t)t * dim, s->x + (size_t)t * dim, s->final_norm, dim, eps);
    const tensor_t *lm = tensor_present(&w->lm_head) ? &w->lm_head : &w->embed;
    linear(s, out, s->xb + (size_t)out_row0 * dim, T - out_row0, lm);
}

/* ------------------------------------------------------------ validation */

/* The loader checks shapes against the config; this re-checks what the
 * forward pass relies on, for any model_t (synthetic ones included). layer < 0
 * names a tensor outside the layers. */
static void where(char *buf, size_t cap, int layer, const char *name)
{
    if (layer >= 0)
        snprintf(buf, cap, "layer %d: %s", layer, name);
    else
        snprintf(buf, cap, "%s", name);
}

static int check_matrix(const tensor_t *t, int64_t rows, int64_t cols, const char *name, int layer, eng_err *err)
{
    char w[96];
    where(w, sizeof w, layer, name);
    if (!tensor_present(t) || t->ndim != 2 || t->shape[0] != rows || t->shape[1] != cols)
        return eng_fail(err, ENG_EINPUT, "%s missing or not (%lld, %lld)", w, (long long)rows, (long long)cols);
    return ENG_OK;
}

static int check_vector(const tensor_t *t, int64_t n, const char *name, int layer, eng_err *err)
{
    char w[96];
    where(w, sizeof w, layer, name);
    if (!tensor_present(t) || t->ndim != 1 || t->shape[0] != n)
        return eng_fail(err, ENG_EINPUT, "%s missing or not (%lld)", w, (long long)n);
    return ENG_OK;
}

static int check_model(const model_t *m, eng_err *err)
{
    const config_t *c = &m->cfg;
    if (c->dim <= 0 || c->hidden_dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 || c->n_kv_heads <= 0 ||
        c->head_dim <= 0 || c->head_dim % 2 || c->vocab_size <= 0 || c->n_heads % c->n_kv_heads)
        return eng_fail(err, ENG_EINPUT, "model %s: inconsistent dimensions in its config", m->name);
    if (!m->w.layers)
        return eng_fail(err, ENG_EINPUT, "model %s: no layers", m->name);
    int q_dim = config_q_dim(c), kv_dim = config_kv_dim(c), rc;
    if ((rc = check_matrix(&m->w.embed, c->vocab_size, c->dim, "embed_tokens", -1, err)) ||
        (rc = check_vector(&m->w.final_norm, c->dim, "norm", -1, err)))
        return rc;
    if (tensor_present(&m->w.lm_head) && (rc = check_matrix(&m->w.lm_head, c->vocab_size, c->dim, "lm_head", -1, err)))
        return rc;
    for (int l = 0; l < c->n_layers; l++) {
        const layer_weights_t *lw = &m->w.layers[l];
        if ((rc = check_vector(&lw->attn_norm, c->dim, "input_layernorm", l, err)) ||
            (rc = check_matrix(&lw->wq, q_dim, c->dim, "q_proj", l, err)) ||
            (rc = check_matrix(&lw->wk, kv_dim, c->dim, "k_proj", l, err)) ||
            (rc = check_matrix(&lw->wv, kv_dim, c->dim, "v_proj", l, err)) ||
            (rc = check_matrix(&lw->wo, c->dim, q_dim, "o_proj", l, err)) ||
            (rc = check_vector(&lw->ffn_norm, c->dim, "post_attention_layernorm", l, err)) ||
            (rc = check_matrix(&lw->w_gate, c->hidden_dim, c->dim, "gate_proj", l, err)) ||
            (rc = check_matrix(&lw->w_up, c->hidden_dim, c->dim, "up_proj", l, err)) ||
            (rc = check_matrix(&lw->w_down, c->dim, c->hidden_dim, "down_proj", l, err)))
            return rc;
        if (tensor_present(&lw->bq) &&
            ((rc = check_vector(&lw->bq, q_dim, "q_proj.bias", l, err)) ||
             (rc = check_vector(&lw->bk, kv_dim, "k_proj.bias", l, err)) ||
             (rc = check_vector(&lw->bv, kv_dim, "v_proj.bias", l, err))))
            return rc;
        if (tensor_present(&lw->q_norm) &&
            ((rc = check_vector(&lw->q_norm, c->head_dim, "q_norm", l, err)) ||
             (rc = check_vector(&lw->k_norm, c->head_dim, "k_norm", l, err))))
            return rc;
    }
    return ENG_OK;
}

/* --------------------------------------------------------------- lifetime */

static size_t layer_vec_floats(const model_t *m, int l)
{
    const config_t *c = &m->cfg;
    const layer_weights_t *lw = &m->w.layers[l];
    size_t n = 2 * (size_t)c->dim;
    if (tensor_present(&lw->bq))
        n += (size_t)config_q_dim(c) + 2 * (size_t)config_kv_dim(c);
    if (tensor_present(&lw->q_norm))
        n += 2 * (size_t)c->head_dim;
    return n;
}

static void widen_vectors(session_t *s)
{
    const config_t *c = s->c;
    float *p = s->vecs;
    for (int l = 0; l < c->n_layers; l++) {
        const layer_weights_t *lw = &s->m->w.layers[l];
        layer_vecs *lv = &s->lv[l];
#define TAKE(field, src, n) do { lv->field = p; kern_row_f32(p, (src), 0, (n)); p += (n); } while (0)
        TAKE(attn_norm, &lw->attn_norm, c->dim);
        TAKE(ffn_norm, &lw->ffn_norm, c->dim);
        if (tensor_present(&lw->bq)) {
            TAKE(bq, &lw->bq, config_q_dim(c));
            TAKE(bk, &lw->bk, config_kv_dim(c));
            TAKE(bv, &lw->bv, config_kv_dim(c));
        }
        if (tensor_present(&lw->q_norm)) {
            TAKE(q_norm, &lw->q_norm, c->head_dim);
            TAKE(k_norm, &lw->k_norm, c->head_dim);
        }
#undef TAKE
    }
    s->final_norm = p;
    kern_row_f32(p, &s->m->w.final_norm, 0, c->dim);
}

int session_new(session_t **out, const model_t *m, int max_seq, int n_threads, eng_err *err)
{
    *out = NULL;
    int rc = check_model(m, err);
    if (rc != ENG_OK)
        return rc;
    const config_t *c = &m->cfg;
    if (max_seq < 0)
        return eng_fail(err, ENG_EINPUT, "session: negative context size %d", max_seq);
    if (max_seq == 0)
        max_seq = c->max_seq_len > 0 && c->max_seq_len < DEFAULT_MAX_SEQ ? c->max_seq_len : DEFAULT_MAX_SEQ;

    session_t *s = eng_calloc(1, sizeof *s);
    if (!s)
        return eng_fail(err, ENG_ENOMEM, "session: out of memory");
    s->m = m;
    s->c = c;
    s->max_seq = max_seq;
    s->cache_on = true;
    s->bk = &backend_cpu;
    s->chunk = max_seq < PREFILL_CHUNK ? max_seq : PREFILL_CHUNK;

    size_t C = (size_t)s->chunk;
    int q_dim = config_q_dim(c), kv_dim = config_kv_dim(c), half = c->head_dim / 2;
    size_t nvec = (size_t)c->dim;
    for (int l = 0; l < c->n_layers; l++)
        nvec += layer_vec_floats(m, l);

    s->tokens = eng_malloc((size_t)max_seq * sizeof(int));
    s->x = alloc_f32(s, C * c->dim);
    s->xb = alloc_f32(s, C * c->dim);
    s->xb2 = alloc_f32(s, C * c->dim);
    s->q = alloc_f32(s, C * q_dim);
    s->k = alloc_f32(s, C * kv_dim);
    s->v = alloc_f32(s, C * kv_dim);
    s->att = alloc_f32(s, C * q_dim);
    s->hb = alloc_f32(s, C * c->hidden_dim);
    s->hb2 = alloc_f32(s, C * c->hidden_dim);
    s->rope_cos = alloc_f32(s, C * half);
    s->rope_sin = alloc_f32(s, C * half);
    s->inv_freq = alloc_f32(s, (size_t)half);
    s->logits = alloc_f32(s, (size_t)c->vocab_size);
    s->vecs = alloc_f32(s, nvec);
    s->lv = eng_calloc((size_t)c->n_layers, sizeof *s->lv);
    if (!s->tokens || !s->x || !s->xb || !s->xb2 || !s->q || !s->k || !s->v || !s->att || !s->hb ||
        !s->hb2 || !s->rope_cos || !s->rope_sin || !s->inv_freq || !s->logits || !s->vecs || !s->lv) {
        session_free(s);
        return eng_fail(err, ENG_ENOMEM, "session: out of memory for the run buffers");
    }
    memset(s->logits, 0, (size_t)c->vocab_size * sizeof(float));
    if ((rc = kv_init(&s->kv, c, max_seq, err)) != ENG_OK) {
        session_free(s);
        return rc;
    }
    int64_t max_in = c->dim > c->hidden_dim ? c->dim : c->hidden_dim;
    if (q_dim > max_in)
        max_in = q_dim;
    bk_sizes sz = {.n_threads = n_threads, .max_in = max_in, .max_rows = s->chunk, .max_keys = max_seq,
                   .n_heads = c->n_heads};
    if ((rc = s->bk->ctx_new(&s->bk_ctx, &sz, err)) != ENG_OK) {
        session_free(s);
        return rc;
    }
    int nt = s->bk->n_threads(s->bk_ctx);
    s->run_bytes += (size_t)nt * ((size_t)max_in * 128 > (1u << 18) ? (size_t)max_in * 128 : (1u << 18)) * sizeof(float);
    s->run_bytes += (size_t)nt * (size_t)(s->chunk > c->n_heads ? s->chunk : c->n_heads) * max_seq * sizeof(float);
    widen_vectors(s);
    rope_init(s);
    *out = s;
    return ENG_OK;
}

void session_free(session_t *s)
{
    if (!s)
        return;
    if (s->bk && s->bk_ctx)
        s->bk->ctx_free(s->bk_ctx);
    kv_release(&s->kv);
    eng_free(s->tokens);
    eng_free(s->x);
    eng_free(s->xb);
    eng_free(s->xb2);
    eng_free(s->q);
    eng_free(s->k);
    eng_free(s->v);
    eng_free(s->att);
    eng_free(s->hb);
    eng_free(s->hb2);
    eng_free(s->rope_cos);
    eng_free(s->rope_sin);
    eng_free(s->inv_freq);
    eng_free(s->logits);
    eng_free(s->vecs);
    eng_free(s->lv);
    eng_free(s->obs);
    eng_free(s);
}

/* ------------------------------------------------------------------ evals */

int session_eval(session_t *s, const int *tokens, int n, float *all_logits, eng_err *err)
{
    const config_t *c = s->c;
    if (n < 1 || !tokens)
        return eng_fail(err, ENG_EINPUT, "session_eval: no tokens given");
    if (n > s->max_seq - s->len)
        return eng_fail(err, ENG_ERANGE, "context full: %d tokens + %d new > %d", s->len, n, s->max_seq);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= c->vocab_size)
            return eng_fail(err, ENG_EINPUT, "token id %d at index %d is outside the vocabulary (0..%d)",
                            tokens[i], i, c->vocab_size - 1);

    /* Cache on: only positions without current K/V run. Off: everything
     * from position 0 runs again (and the cache is overwritten). */
    int start = s->cache_on ? s->kv_valid : 0;
    int end = s->len + n, first_new = s->len;

    s->obs_valid = false;
    if (s->observe) {
        size_t need = (size_t)c->n_layers * c->n_heads * (size_t)(end - start) * (size_t)end;
        if (need > s->obs_cap) {
            float *p = eng_realloc(s->obs, need * sizeof(float));
            if (!p)
                return eng_fail(err, ENG_ENOMEM, "observer: cannot allocate %zu bytes of attention rows",
                                need * sizeof(float));
            s->obs = p;
            s->obs_cap = need;
        }
        s->obs_q0 = start;
        s->obs_nq = end - start;
        s->obs_nk = end;
    }

    double t0 = eng_now_ms();
    memcpy(s->tokens + s->len, tokens, (size_t)n * sizeof(int));
    size_t V = (size_t)c->vocab_size;
    for (int p = start; p < end; p += s->chunk) {
        int T = end - p < s->chunk ? end - p : s->chunk;
        /* Which rows of this chunk need logits, and where they go. */
        int want = all_logits ? first_new : end - 1;
        int r0 = want > p ? want - p : 0;
        float *dst = all_logits ? all_logits + (size_t)(p + r0 - first_new) * V : s->logits;
        forward(s, p, T, r0, dst, p - start);
    }
#ifdef ATTNSCOPE_CUDA
    if (s->bk == &backend_cuda) {
        int rc = cuda_ctx_status(s->bk_ctx, err);
        if (rc != ENG_OK) {   /* nothing appended; K/V from start on are not trusted */
            s->kv_valid = start < s->kv_valid ? start : s->kv_valid;
            s->obs_valid = false;
            /* Fall back to the CPU: the next eval runs there. */
            eng_err e2 = {{0}};
            if (session_set_device(s, "cpu", 0, &e2) == ENG_OK && err) {
                size_t used = strlen(err->msg);
                snprintf(err->msg + used, sizeof err->msg - used, "; switched to cpu");
            }
            return rc;
        }
    }
#endif
    if (all_logits)
        memcpy(s->logits, all_logits + (size_t)(n - 1) * V, V * sizeof(float));
    s->len = end;
    s->kv_valid = end;
    s->obs_valid = s->observe;
    s->timing = (session_timing){
        .n_tokens = n, .n_computed = end - start, .prefill = end - start > 1,
        .cache = s->cache_on, .ms = eng_now_ms() - t0,
    };
    return ENG_OK;
}

int session_rewind(session_t *s, int n)
{
    if (n < 0 || n > s->len)
        return ENG_ERANGE;
    s->len = n;
    if (s->kv_valid > n)
        s->kv_valid = n;
    s->obs_valid = false;
    return ENG_OK;
}

/* -------------------------------------------------------------- accessors */

const model_t *session_model(const session_t *s) { return s->m; }
int session_len(const session_t *s) { return s->len; }
int session_max(const session_t *s) { return s->max_seq; }
const int *session_tokens(const session_t *s) { return s->tokens; }
const float *session_logits(const session_t *s) { return s->logits; }
void session_set_cache(session_t *s, bool on) { s->cache_on = on; }
bool session_cache(const session_t *s) { return s->cache_on; }
size_t session_kv_bytes(const session_t *s) { return kv_bytes(&s->kv, s->len); }
size_t session_kv_bytes_max(const session_t *s) { return kv_bytes(&s->kv, s->max_seq); }
session_timing session_last_timing(const session_t *s) { return s->timing; }
size_t session_run_bytes(const session_t *s) { return s->run_bytes; }
int session_threads(const session_t *s) { return s->bk->n_threads(s->bk_ctx); }
const char *session_device(const session_t *s) { return s->bk->name; }

/* Runs positions 0..kv_valid-1 again on the current backend (no logits, no
 * observer), filling its cache. */
static int rebuild_cache(session_t *s, eng_err *err)
{
    bool observe = s->observe;
    s->observe = false;
    for (int p = 0; p < s->kv_valid; p += s->chunk) {
        int T = s->kv_valid - p < s->chunk ? s->kv_valid - p : s->chunk;
        forward(s, p, T, T, NULL, 0);
    }
    s->observe = observe;
#ifdef ATTNSCOPE_CUDA
    if (s->bk == &backend_cuda)
        return cuda_ctx_status(s->bk_ctx, err);
#else
    (void)err;
#endif
    return ENG_OK;
}

int session_set_device(session_t *s, const char *device, int n_threads, eng_err *err)
{
    const backend_ops *bk = NULL;
    if (device && strcmp(device, "cpu") == 0)
        bk = &backend_cpu;
#ifdef ATTNSCOPE_CUDA
    else if (device && strcmp(device, "cuda") == 0)
        bk = &backend_cuda;
#else
    else if (device && strcmp(device, "cuda") == 0)
        return eng_fail(err, ENG_EDEVICE, "this build has no CUDA backend (rebuild with make CUDA=1)");
#endif
    else
        return eng_fail(err, ENG_EINPUT, "device must be cpu or cuda, not '%s'", device ? device : "(none)");
    if (bk == s->bk)
        return ENG_OK;
    const config_t *c = s->c;
    int q_dim = config_q_dim(c);
    int64_t max_in = c->dim > c->hidden_dim ? c->dim : c->hidden_dim;
    if (q_dim > max_in)
        max_in = q_dim;
    bk_sizes sz = {.n_threads = n_threads, .max_in = max_in, .max_rows = s->chunk, .max_keys = s->max_seq,
                   .n_heads = c->n_heads};
    void *ctx = NULL;
    int rc = bk->ctx_new(&ctx, &sz, err);
    if (rc != ENG_OK)
        return rc;   /* the session stays on its device */
    const backend_ops *old = s->bk;
    void *old_ctx = s->bk_ctx;
    s->bk = bk;
    s->bk_ctx = ctx;
    /* Each device keeps its own cache: rebuild positions 0..kv_valid-1 on
     * the new one now (the caller times the switch), so the conversation
     * continues where it was. */
    if ((rc = rebuild_cache(s, err)) != ENG_OK) {
        s->bk->ctx_free(s->bk_ctx);
        s->bk = old;
        s->bk_ctx = old_ctx;
        return rc;   /* the old device's cache is still current */
    }
    old->ctx_free(old_ctx);
    return ENG_OK;
}

void session_set_observe(session_t *s, bool on)
{
    s->observe = on;
    if (!on)
        s->obs_valid = false;
}

const float *session_attn(const session_t *s, int layer, int *q0, int *n_q, int *n_k)
{
    if (!s->obs_valid || layer < 0 || layer >= s->c->n_layers)
        return NULL;
    if (q0) *q0 = s->obs_q0;
    if (n_q) *n_q = s->obs_nq;
    if (n_k) *n_k = s->obs_nk;
    return s->obs + (size_t)layer * s->c->n_heads * s->obs_nq * s->obs_nk;
}

static size_t tensor_bytes(const tensor_t *t)
{
    if (!tensor_present(t))
        return 0;
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= (size_t)t->shape[i];
    return n * dtype_size(t->dtype);
}

size_t session_decode_weight_bytes(const session_t *s)
{
    const weights_t *w = &s->m->w;
    size_t b = tensor_bytes(&w->final_norm);
    b += tensor_present(&w->lm_head) ? tensor_bytes(&w->lm_head) : tensor_bytes(&w->embed);
    b += (size_t)s->c->dim * dtype_size(w->embed.dtype);   /* one embedding row */
    for (int l = 0; l < s->c->n_layers; l++) {
        const layer_weights_t *lw = &w->layers[l];
        const tensor_t *all[] = {&lw->attn_norm, &lw->wq, &lw->wk, &lw->wv, &lw->wo, &lw->bq, &lw->bk,
                                 &lw->bv, &lw->q_norm, &lw->k_norm, &lw->ffn_norm, &lw->w_gate,
                                 &lw->w_up, &lw->w_down};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
            b += tensor_bytes(all[i]);
    }
    return b;
}
