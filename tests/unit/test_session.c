/* test_session.c - the forward pass and the KV cache: against a naive
 * double-precision forward written from the math, prefill == token-by-token
 * decode, cache on == cache off (also toggled mid-sequence), rewind, the
 * observer, the context limit and failing allocations. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

static const char *variants[] = {"tiny", "tiny-qwen2", "tiny-qwen3", "tiny-llama3", "tiny-hd128"};
#define N_VARIANTS (int)(sizeof variants / sizeof variants[0])

static model_t *open_synth(const char *name, eng_dtype t)
{
    model_t *m = NULL;
    eng_err e;
    int rc = model_synthetic(&m, name, t, 7, &e);
    assert_int_equal(rc, ENG_OK);
    return m;
}

static session_t *open_session(const model_t *m, int max_seq)
{
    session_t *s = NULL;
    eng_err e;
    assert_int_equal(session_new(&s, m, max_seq, 2, &e), ENG_OK);
    return s;
}

static void fill_tokens(int *tok, int n, int vocab, unsigned seed)
{
    for (int i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        tok[i] = (int)((seed >> 8) % (unsigned)vocab);
    }
}

/* max |a - b| / max |b|: the error relative to the logits' scale. */
static double rel_err_f(const float *a, const float *b, size_t n)
{
    double d = 0, scale = 1e-30;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        scale = fmax(scale, fabs((double)b[i]));
    }
    return d / scale;
}

/* ------------------------------------------------ naive reference forward */

static double elem(const tensor_t *t, size_t i)
{
    const uint16_t *h = t->data;
    switch (t->dtype) {
    case DT_BF16: return bf16_to_f32(h[i]);
    case DT_F16: return f16_to_f32(h[i]);
    default: return ((const float *)t->data)[i];
    }
}

static void ref_rmsnorm(double *o, const double *x, const tensor_t *w, int n, double eps)
{
    double ss = 0;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    double r = 1.0 / sqrt(ss / n + eps);
    for (int i = 0; i < n; i++) o[i] = x[i] * r * elem(w, (size_t)i);
}

/* y[rows] = W x (+ b) */
static void ref_linear(double *y, const tensor_t *w, const tensor_t *b, const double *x)
{
    int64_t rows = w->shape[0], cols = w->shape[1];
    for (int64_t r = 0; r < rows; r++) {
        double s = b && tensor_present(b) ? elem(b, (size_t)r) : 0.0;
        for (int64_t k = 0; k < cols; k++) s += elem(w, (size_t)(r * cols + k)) * x[k];
        y[r] = s;
    }
}

static double ref_inv_freq(const config_t *c, int i)
{
    double f = pow(c->rope_theta, -2.0 * i / c->head_dim);
    if (c->rope_type == ROPE_LLAMA3) {
        double L = c->rope_orig_max_pos, wl = 2 * M_PI / f;
        if (wl > L / c->rope_low_freq) {
            f /= c->rope_factor;
        } else if (wl >= L / c->rope_high_freq) {
            double sm = (L / wl - c->rope_low_freq) / (c->rope_high_freq - c->rope_low_freq);
            f = (1 - sm) * f / c->rope_factor + sm * f;
        }
    } else if (c->rope_type == ROPE_LINEAR) {
        f /= c->rope_factor;
    }
    return f;
}

/* rotate_half: out = v * cos + cat(-v2, v1) * sin. */
static void ref_rope(double *v, const config_t *c, int pos)
{
    int half = c->head_dim / 2;
    for (int i = 0; i < half; i++) {
        double a = pos * ref_inv_freq(c, i), x1 = v[i], x2 = v[i + half];
        v[i] = x1 * cos(a) - x2 * sin(a);
        v[i + half] = x2 * cos(a) + x1 * sin(a);
    }
}

/* Logits (T, vocab) of tok[0..T-1], every position recomputed from scratch. */
static double *ref_forward(const model_t *m, const int *tok, int T)
{
    const config_t *c = &m->cfg;
    int D = c->dim, H = c->hidden_dim, hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd;
    double *x = calloc((size_t)T * D, sizeof(double)), *xb = malloc((size_t)D * sizeof(double));
    double *q = malloc((size_t)T * qd * sizeof(double)), *k = malloc((size_t)T * kvd * sizeof(double));
    double *v = malloc((size_t)T * kvd * sizeof(double)), *att = malloc((size_t)qd * sizeof(double));
    double *o = malloc((size_t)D * sizeof(double)), *g = malloc((size_t)H * sizeof(double));
    double *u = malloc((size_t)H * sizeof(double)), *p = malloc((size_t)T * sizeof(double));
    double *logits = malloc((size_t)T * c->vocab_size * sizeof(double));
    for (int t = 0; t < T; t++)
        for (int i = 0; i < D; i++) x[(size_t)t * D + i] = elem(&m->w.embed, (size_t)tok[t] * D + i);
    for (int l = 0; l < c->n_layers; l++) {
        const layer_weights_t *lw = &m->w.layers[l];
        for (int t = 0; t < T; t++) {
            ref_rmsnorm(xb, x + (size_t)t * D, &lw->attn_norm, D, c->norm_eps);
            ref_linear(q + (size_t)t * qd, &lw->wq, &lw->bq, xb);
            ref_linear(k + (size_t)t * kvd, &lw->wk, &lw->bk, xb);
            ref_linear(v + (size_t)t * kvd, &lw->wv, &lw->bv, xb);
            for (int h = 0; h < c->n_heads; h++) {
                double *qh = q + (size_t)t * qd + h * hd;
                if (tensor_present(&lw->q_norm)) ref_rmsnorm(qh, qh, &lw->q_norm, hd, c->norm_eps);
                ref_rope(qh, c, t);
            }
            for (int h = 0; h < c->n_kv_heads; h++) {
                double *kh = k + (size_t)t * kvd + h * hd;
                if (tensor_present(&lw->k_norm)) ref_rmsnorm(kh, kh, &lw->k_norm, hd, c->norm_eps);
                ref_rope(kh, c, t);
            }
        }
        for (int t = 0; t < T; t++) {
            for (int h = 0; h < c->n_heads; h++) {
                int kvh = h / (c->n_heads / c->n_kv_heads);
                double mx = -1e300, sum = 0;
                for (int j = 0; j <= t; j++) {
                    double s = 0;
                    for (int d = 0; d < hd; d++) s += q[(size_t)t * qd + h * hd + d] * k[(size_t)j * kvd + kvh * hd + d];
                    p[j] = s / sqrt(hd);
                    mx = fmax(mx, p[j]);
                }
                for (int j = 0; j <= t; j++) sum += (p[j] = exp(p[j] - mx));
                for (int d = 0; d < hd; d++) {
                    double a = 0;
                    for (int j = 0; j <= t; j++) a += p[j] / sum * v[(size_t)j * kvd + kvh * hd + d];
                    att[h * hd + d] = a;
                }
            }
            ref_linear(o, &lw->wo, NULL, att);
            for (int i = 0; i < D; i++) x[(size_t)t * D + i] += o[i];
        }
        for (int t = 0; t < T; t++) {
            ref_rmsnorm(xb, x + (size_t)t * D, &lw->ffn_norm, D, c->norm_eps);
            ref_linear(g, &lw->w_gate, NULL, xb);
            ref_linear(u, &lw->w_up, NULL, xb);
            for (int i = 0; i < H; i++) g[i] = g[i] / (1 + exp(-g[i])) * u[i];
            ref_linear(o, &lw->w_down, NULL, g);
            for (int i = 0; i < D; i++) x[(size_t)t * D + i] += o[i];
        }
    }
    const tensor_t *lm = tensor_present(&m->w.lm_head) ? &m->w.lm_head : &m->w.embed;
    for (int t = 0; t < T; t++) {
        ref_rmsnorm(xb, x + (size_t)t * D, &m->w.final_norm, D, c->norm_eps);
        ref_linear(logits + (size_t)t * c->vocab_size, lm, NULL, xb);
    }
    free(x); free(xb); free(q); free(k); free(v); free(att); free(o); free(g); free(u); free(p);
    return logits;
}

/* ------------------------------------------------------------------ tests */

static void forward_matches_a_naive_double_precision_forward(void **state)
{
    (void)state;
    for (int vi = 0; vi < N_VARIANTS; vi++)
        for (int t = DT_F32; t <= DT_BF16; t++) {
            model_t *m = open_synth(variants[vi], (eng_dtype)t);
            int V = m->cfg.vocab_size, T = 13, tok[13];
            fill_tokens(tok, T, V, 3u + (unsigned)vi);
            double *ref = ref_forward(m, tok, T);
            session_t *s = open_session(m, 64);
            float *got = malloc((size_t)T * V * sizeof(float));
            eng_err e;
            assert_int_equal(session_eval(s, tok, T, got, &e), ENG_OK);
            double d = 0, scale = 0;
            for (size_t i = 0; i < (size_t)T * V; i++) {
                d = fmax(d, fabs(got[i] - ref[i]));
                scale = fmax(scale, fabs(ref[i]));
            }
            if (d / scale > 1e-4)
                fail_msg("%s %s: max error %g relative to %g", variants[vi], dtype_name((eng_dtype)t), d / scale, scale);
            assert_memory_equal(session_logits(s), got + (size_t)(T - 1) * V, (size_t)V * sizeof(float));
            free(ref); free(got);
            session_free(s);
            model_close(m);
        }
}

static void prefill_logits_equal_token_by_token_decode(void **state)
{
    (void)state;
    for (int vi = 0; vi < N_VARIANTS; vi++) {
        model_t *m = open_synth(variants[vi], DT_BF16);
        int V = m->cfg.vocab_size, T = 40, tok[40];
        fill_tokens(tok, T, V, 11u);
        session_t *a = open_session(m, 64), *b = open_session(m, 64);
        float *all = malloc((size_t)T * V * sizeof(float));
        assert_int_equal(session_eval(a, tok, T, all, NULL), ENG_OK);
        assert_true(session_last_timing(a).prefill);
        for (int i = 0; i < T; i++) {
            assert_int_equal(session_eval(b, tok + i, 1, NULL, NULL), ENG_OK);
            assert_int_equal(session_last_timing(b).n_computed, 1);
            assert_true(rel_err_f(session_logits(b), all + (size_t)i * V, (size_t)V) <= 1e-4);
        }
        free(all);
        session_free(a);
        session_free(b);
        model_close(m);
    }
}

static void prefill_longer_than_one_chunk_matches_decode(void **state)
{
    (void)state;
    model_t *m = open_synth("tiny", DT_F16);
    int V = m->cfg.vocab_size, T = 700;
    int *tok = malloc((size_t)T * sizeof(int));
    fill_tokens(tok, T, V, 5u);
    session_t *a = open_session(m, 800), *b = open_session(m, 800);
    float *all = malloc((size_t)T * V * sizeof(float));
    assert_int_equal(session_eval(a, tok, T, all, NULL), ENG_OK);
    for (int i = 0; i < T; i++) {
        assert_int_equal(session_eval(b, tok + i, 1, NULL, NULL), ENG_OK);
        assert_true(rel_err_f(session_logits(b), all + (size_t)i * V, (size_t)V) <= 1e-4);
    }
    free(all); free(tok);
    session_free(a);
    session_free(b);
    model_close(m);
}

static void cache_off_gives_the_cache_on_logits_even_toggled_mid_sequence(void **state)
{
    (void)state;
    for (int vi = 0; vi < N_VARIANTS; vi++) {
        model_t *m = open_synth(variants[vi], DT_BF16);
        int V = m->cfg.vocab_size, tok[30];
        fill_tokens(tok, 30, V, 21u);
        session_t *on = open_session(m, 64), *mix = open_session(m, 64);
        /* (tokens, cache setting of `mix`) per eval */
        const int plan[][2] = {{5, 1}, {1, 1}, {1, 0}, {1, 0}, {4, 0}, {1, 1}, {1, 1}, {3, 1}, {1, 0}, {2, 1}};
        int pos = 0;
        for (size_t i = 0; i < sizeof plan / sizeof plan[0]; i++) {
            int n = plan[i][0];
            session_set_cache(mix, plan[i][1] != 0);
            assert_int_equal(session_eval(on, tok + pos, n, NULL, NULL), ENG_OK);
            assert_int_equal(session_eval(mix, tok + pos, n, NULL, NULL), ENG_OK);
            pos += n;
            session_timing tm = session_last_timing(mix);
            assert_int_equal(tm.n_tokens, n);
            assert_int_equal(tm.n_computed, plan[i][1] ? n : pos);   /* off re-runs everything */
            assert_int_equal(tm.cache, plan[i][1] != 0);
            assert_true(rel_err_f(session_logits(mix), session_logits(on), (size_t)V) <= 1e-4);
        }
        assert_int_equal(session_len(mix), pos);
        assert_memory_equal(session_tokens(mix), tok, (size_t)pos * sizeof(int));
        session_free(on);
        session_free(mix);
        model_close(m);
    }
}

static void rewind_then_eval_reproduces_the_logits(void **state)
{
    (void)state;
    model_t *m = open_synth("tiny-qwen3", DT_F32);
    int V = m->cfg.vocab_size, tok[20], other[3] = {1, 2, 3};
    fill_tokens(tok, 20, V, 9u);
    session_t *s = open_session(m, 32);
    float *first = malloc((size_t)V * sizeof(float));
    assert_int_equal(session_eval(s, tok, 12, NULL, NULL), ENG_OK);
    assert_int_equal(session_eval(s, tok + 12, 1, NULL, NULL), ENG_OK);
    memcpy(first, session_logits(s), (size_t)V * sizeof(float));
    /* Wander off, come back to 12 tokens, redo the same step. */
    assert_int_equal(session_eval(s, other, 3, NULL, NULL), ENG_OK);
    assert_int_equal(session_rewind(s, 12), ENG_OK);
    assert_int_equal(session_len(s), 12);
    assert_int_equal(session_eval(s, tok + 12, 1, NULL, NULL), ENG_OK);
    assert_int_equal(session_last_timing(s).n_computed, 1);   /* the cache was kept */
    assert_true(rel_err_f(session_logits(s), first, (size_t)V) <= 1e-6);
    assert_int_equal(session_rewind(s, 14), ENG_ERANGE);
    assert_int_equal(session_rewind(s, -1), ENG_ERANGE);
    assert_int_equal(session_rewind(s, 0), ENG_OK);
    assert_int_equal(session_eval(s, tok, 13, NULL, NULL), ENG_OK);
    assert_true(rel_err_f(session_logits(s), first, (size_t)V) <= 1e-4);
    free(first);
    session_free(s);
    model_close(m);
}

static void observer_rows_sum_to_one_with_zeros_above_the_diagonal(void **state)
{
    (void)state;
    model_t *m = open_synth("tiny", DT_BF16);
    const config_t *c = &m->cfg;
    int tok[12];
    fill_tokens(tok, 12, c->vocab_size, 4u);
    session_t *s = open_session(m, 32), *plain = open_session(m, 32);
    int q0, nq, nk;
    assert_int_equal(session_eval(s, tok, 8, NULL, NULL), ENG_OK);
    assert_null(session_attn(s, 0, &q0, &nq, &nk));   /* off by default */

    session_set_observe(s, true);
    assert_int_equal(session_eval(s, tok + 8, 1, NULL, NULL), ENG_OK);   /* decode */
    assert_int_equal(session_eval(plain, tok, 9, NULL, NULL), ENG_OK);
    assert_true(rel_err_f(session_logits(s), session_logits(plain), (size_t)c->vocab_size) <= 1e-4);
    const float *p = session_attn(s, 1, &q0, &nq, &nk);
    assert_non_null(p);
    assert_int_equal(q0, 8);
    assert_int_equal(nq, 1);
    assert_int_equal(nk, 9);

    session_set_cache(s, false);   /* cache off: every row of the context */
    assert_int_equal(session_eval(s, tok + 9, 3, NULL, NULL), ENG_OK);
    for (int l = 0; l < c->n_layers; l++) {
        p = session_attn(s, l, &q0, &nq, &nk);
        assert_non_null(p);
        assert_int_equal(q0, 0);
        assert_int_equal(nq, 12);
        assert_int_equal(nk, 12);
        for (int h = 0; h < c->n_heads; h++)
            for (int i = 0; i < nq; i++) {
                const float *row = p + ((size_t)h * nq + i) * nk;
                double sum = 0;
                for (int j = 0; j < nk; j++) {
                    if (j > q0 + i)
                        assert_true(row[j] == 0.0f);
                    else
                        assert_true(row[j] > 0.0f);
                    sum += row[j];
                }
                assert_true(fabs(sum - 1.0) < 1e-5);
            }
    }
    assert_null(session_attn(s, c->n_layers, NULL, NULL, NULL));
    session_set_observe(s, false);
    assert_null(session_attn(s, 0, NULL, NULL, NULL));
    session_free(s);
    session_free(plain);
    model_close(m);
}

static void observer_rows_of_a_prefill_longer_than_a_chunk_match_decode_rows(void **state)
{
    (void)state;
    model_t *m = open_synth("tiny", DT_BF16);
    const config_t *c = &m->cfg;
    int T = 600, *tok = malloc((size_t)T * sizeof(int));
    fill_tokens(tok, T, c->vocab_size, 8u);
    session_t *pre = open_session(m, T), *dec = open_session(m, T);
    session_set_observe(pre, true);
    assert_int_equal(session_eval(pre, tok, T, NULL, NULL), ENG_OK);   /* two chunks: 512 + 88 */
    assert_int_equal(session_eval(dec, tok, T - 89, NULL, NULL), ENG_OK);
    session_set_observe(dec, true);
    for (int pos = T - 89; pos < T; pos++) {   /* positions 511..599 straddle the chunk edge */
        assert_int_equal(session_eval(dec, tok + pos, 1, NULL, NULL), ENG_OK);
        for (int l = 0; l < c->n_layers; l++) {
            int q0, nq, nk, dq0, dnq, dnk;
            const float *p = session_attn(pre, l, &q0, &nq, &nk);
            const float *d = session_attn(dec, l, &dq0, &dnq, &dnk);
            assert_int_equal(q0, 0);
            assert_int_equal(nq, T);
            assert_int_equal(dq0, pos);
            assert_int_equal(dnq, 1);
            assert_int_equal(dnk, pos + 1);
            for (int h = 0; h < c->n_heads; h++) {
                const float *pr = p + ((size_t)h * nq + pos) * nk, *dr = d + (size_t)h * dnk;
                for (int j = 0; j < nk; j++) {
                    if (j > pos)
                        assert_true(pr[j] == 0.0f);
                    else
                        assert_true(fabsf(pr[j] - dr[j]) <= 1e-5f);
                }
            }
        }
    }
    free(tok);
    session_free(pre);
    session_free(dec);
    model_close(m);
}

static void eval_past_the_context_limit_is_erange_and_appends_nothing(void **state)
{
    (void)state;
    model_t *m = open_synth("tiny", DT_F32);
    int tok[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    session_t *s = open_session(m, 8);
    eng_err e;
    assert_int_equal(session_eval(s, tok, 6, NULL, &e), ENG_OK);
    assert_int_equal(session_eval(s, tok, 3, NULL, &e), ENG_ERANGE);
    assert_non_null(strstr(e.msg, "context"));
    assert_int_equal(session_len(s), 6);
    assert_int_equal(session_eval(s, tok, 2, NULL, &e), ENG_OK);
    assert_int_equal(session_eval(s, tok, 1, NULL, &e), ENG_ERANGE);
    assert_int_equal(session_len(s), 8);
    session_free(s);
    model_close(m);
}

static void token_ids_outside_the_vocabulary_are_rejected(void **state)
{
    (void)state;
    model_t *m = open_synth("tiny", DT_F32);
    session_t *s = open_session(m, 8);
    int bad[2] = {3, m->cfg.vocab_size}, neg = -1;
    eng_err e;
    assert_int_equal(session_eval(s, bad, 2, NULL, &e), ENG_EINPUT);
    assert_int_equal(session_eval(s, &neg, 1, NULL, &e), ENG_EINPUT);
    assert_int_equal(session_eval(s, bad, 0, NULL, &e), ENG_EINPUT);
    assert_int_equal(session_len(s), 0);
    session_free(s);
    model_close(m);
}

static void kv_bytes_count_keys_and_values_of_every_layer(void **state)
{
    (void)state;
    model_t *m = open_synth("tiny-qwen2", DT_F32);
    const config_t *c = &m->cfg;
    session_t *s = open_session(m, 20);
    size_t per_tok = 2 * (size_t)c->n_layers * c->n_kv_heads * c->head_dim * sizeof(float);
    int tok[5] = {1, 2, 3, 4, 5};
    assert_int_equal(session_kv_bytes(s), 0);
    assert_int_equal(session_kv_bytes_max(s), 20 * per_tok);
    assert_int_equal(session_eval(s, tok, 5, NULL, NULL), ENG_OK);
    assert_int_equal(session_kv_bytes(s), 5 * per_tok);
    assert_int_equal(session_max(s), 20);
    session_free(s);
    model_close(m);
}

static void session_new_rejects_weights_whose_shapes_do_not_fit_the_config(void **state)
{
    (void)state;
    model_t *m = open_synth("tiny", DT_F32);
    session_t *s = NULL;
    eng_err e;
    m->w.layers[1].wk.shape[0]++;
    assert_int_equal(session_new(&s, m, 8, 1, &e), ENG_EINPUT);
    assert_null(s);
    assert_non_null(strstr(e.msg, "layer 1: k_proj"));
    m->w.layers[1].wk.shape[0]--;
    m->w.lm_head.shape[1] = 3;
    assert_int_equal(session_new(&s, m, 8, 1, &e), ENG_EINPUT);
    assert_string_equal(e.msg, "lm_head missing or not (97, 64)");
    m->w.lm_head.shape[1] = 64;
    m->cfg.n_kv_heads = 3;   /* 4 heads are not a multiple of 3 */
    assert_int_equal(session_new(&s, m, 8, 1, &e), ENG_EINPUT);
    m->cfg.n_kv_heads = 2;
    assert_int_equal(session_new(&s, m, -1, 1, &e), ENG_EINPUT);
    assert_int_equal(session_new(&s, m, 8, 1, &e), ENG_OK);
    session_free(s);
    model_close(m);
}

static void session_new_survives_every_failing_allocation(void **state)
{
    (void)state;
    model_t *m = open_synth("tiny-qwen3", DT_BF16);
    for (long n = 1;; n++) {
        session_t *s = NULL;
        eng_err e;
        eng_alloc_fail_at(n);
        int rc = session_new(&s, m, 16, 2, &e);
        eng_alloc_fail_at(0);
        if (rc == ENG_OK) {
            assert_true(n > 10);
            session_free(s);
            break;
        }
        assert_int_equal(rc, ENG_ENOMEM);
        assert_null(s);
    }
    model_close(m);
}

static void synthetic_shapes_have_the_published_parameter_counts(void **state)
{
    (void)state;
    model_t *m = open_synth("smollm2-135m", DT_BF16);
    assert_int_equal(m->weights_bytes, 2 * (size_t)134515008);   /* HF: 134,515,008 parameters */
    session_t *s = open_session(m, 16);
    /* Tied: lm_head is the embedding, read once, plus one embedding row. */
    assert_int_equal(session_decode_weight_bytes(s), m->weights_bytes + 2 * 576);
    session_free(s);
    model_close(m);
    eng_err e;
    assert_int_equal(model_synthetic(&m, "gpt-5", DT_BF16, 1, &e), ENG_EINPUT);
    assert_null(m);
    assert_non_null(strstr(e.msg, "gpt-5"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(forward_matches_a_naive_double_precision_forward),
        cmocka_unit_test(prefill_logits_equal_token_by_token_decode),
        cmocka_unit_test(prefill_longer_than_one_chunk_matches_decode),
        cmocka_unit_test(cache_off_gives_the_cache_on_logits_even_toggled_mid_sequence),
        cmocka_unit_test(rewind_then_eval_reproduces_the_logits),
        cmocka_unit_test(observer_rows_sum_to_one_with_zeros_above_the_diagonal),
        cmocka_unit_test(observer_rows_of_a_prefill_longer_than_a_chunk_match_decode_rows),
        cmocka_unit_test(eval_past_the_context_limit_is_erange_and_appends_nothing),
        cmocka_unit_test(token_ids_outside_the_vocabulary_are_rejected),
        cmocka_unit_test(kv_bytes_count_keys_and_values_of_every_layer),
        cmocka_unit_test(session_new_rejects_weights_whose_shapes_do_not_fit_the_config),
        cmocka_unit_test(session_new_survives_every_failing_allocation),
        cmocka_unit_test(synthetic_shapes_have_the_published_parameter_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
