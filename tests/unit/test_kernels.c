/* test_kernels.c - the CPU kernels and backend against naive double-precision
 * loops, per stored dtype: matvec, GEMM with widened blocks, softmax, the
 * thread pool, and attention (decode and GEMM paths, GQA, observer); the
 * batched decode-attention loops against the bits of the plain ones. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "backend.h"
#include "cpu/kernels.h"
#include "cpu/pool.h"

static uint64_t rng = 88172645463325252ULL;
static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

/* A (rows, cols) tensor of random values in dtype, and its exact f32 values. */
static tensor_t random_tensor(eng_dtype t, int rows, int cols, float **exact)
{
    size_t n = (size_t)rows * cols;
    void *data = malloc(n * dtype_size(t));
    *exact = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        float v = frand();
        if (t == DT_BF16) {
            ((uint16_t *)data)[i] = f32_to_bf16(v);
            v = bf16_to_f32(((uint16_t *)data)[i]);
        } else if (t == DT_F16) {
            ((uint16_t *)data)[i] = f32_to_f16(v);
            v = f16_to_f32(((uint16_t *)data)[i]);
        } else {
            ((float *)data)[i] = v;
        }
        (*exact)[i] = v;
    }
    return (tensor_t){.data = data, .dtype = t, .ndim = 2, .shape = {rows, cols}};
}

/* Odd sizes run every SIMD tail. */
static const int sizes[][2] = {{1, 1}, {3, 15}, {5, 16}, {7, 33}, {17, 576}, {9, 1000}, {64, 2048}};

static void matvec_matches_naive_loops_for_every_dtype(void **state)
{
    (void)state;
    for (int t = DT_F32; t <= DT_BF16; t++)
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
            int rows = sizes[si][0], cols = sizes[si][1];
            float *w_exact, *x = malloc((size_t)cols * sizeof(float)), *y = malloc((size_t)rows * sizeof(float));
            tensor_t w = random_tensor((eng_dtype)t, rows, cols, &w_exact);
            for (int i = 0; i < cols; i++) x[i] = frand();
            kern_matvec_rows(y, &w, 0, rows, x);
            for (int r = 0; r < rows; r++) {
                double ref = 0;
                for (int k = 0; k < cols; k++) ref += (double)w_exact[(size_t)r * cols + k] * x[k];
                assert_true(fabs(y[r] - ref) <= 1e-5 * (1 + sqrt(cols)));
            }
            /* A sub-range writes only its own rows, starting at y[0]. */
            if (rows > 2) {
                float y2[2];
                kern_matvec_rows(y2, &w, 1, 3, x);
                assert_true(fabsf(y2[0] - y[1]) <= 1e-6f * (1 + fabsf(y[1])));
                assert_true(fabsf(y2[1] - y[2]) <= 1e-6f * (1 + fabsf(y[2])));
            }
            free((void *)w.data); free(w_exact); free(x); free(y);
        }
}

static void row_conversion_is_exact_for_every_dtype(void **state)
{
    (void)state;
    for (int t = DT_F32; t <= DT_BF16; t++) {
        float *exact;
        tensor_t w = random_tensor((eng_dtype)t, 7, 37, &exact);
        float out[5 * 37];
        kern_convert_rows(out, &w, 2, 7);
        assert_memory_equal(out, exact + 2 * 37, sizeof out);
        kern_row_f32(out, &w, 3, 37);
        assert_memory_equal(out, exact + 3 * 37, 37 * sizeof(float));
        free((void *)w.data); free(exact);
    }
}

static void softmax_matches_exp_and_sums_to_one(void **state)
{
    (void)state;
    const int ns[] = {1, 2, 15, 16, 17, 100, 1031};
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        int n = ns[k];
        float *x = malloc((size_t)n * sizeof(float));
        double *ref = malloc((size_t)n * sizeof(double)), mx = -1e30, sum = 0;
        for (int i = 0; i < n; i++) {
            x[i] = 20.0f * frand();
            if (i == n / 2) x[i] = -200.0f;   /* deep underflow */
            mx = fmax(mx, x[i]);
        }
        for (int i = 0; i < n; i++) sum += (ref[i] = exp((double)x[i] - mx));
        kern_softmax(x, n);
        double s = 0;
        for (int i = 0; i < n; i++) {
            assert_true(fabs(x[i] - ref[i] / sum) <= 1e-6 * (ref[i] / sum) + 1e-9);
            s += x[i];
        }
        assert_true(fabs(s - 1.0) < 1e-5);
        free(x); free(ref);
    }
}

static void silu_mul_matches_the_formula_for_both_signs(void **state)
{
    (void)state;
    float g[37], u[37], ref[37];
    for (int i = 0; i < 37; i++) {
        g[i] = 30.0f * frand();
        u[i] = frand();
        ref[i] = (float)((double)g[i] / (1.0 + exp(-(double)g[i])) * u[i]);
    }
    g[3] = -100.0f;   /* exp overflow territory for a naive exp(-x) */
    ref[3] = (float)(-100.0 / (1.0 + exp(100.0)) * u[3]);
    kern_silu_mul(g, u, 37);
    for (int i = 0; i < 37; i++)
        assert_true(fabsf(g[i] - ref[i]) <= 1e-6f * (1.0f + fabsf(ref[i])));
}

typedef struct {
    int hits[5000];
    int by_tid[4];
    int64_t grain, n;
    int bad_ranges;
} pool_probe;

static void probe_fn(void *arg, int64_t b, int64_t e, int tid)
{
    pool_probe *p = arg;
    if (b % p->grain != 0 || b >= e || e > p->n || (e - b < p->grain && e != p->n))
        __atomic_fetch_add(&p->bad_ranges, 1, __ATOMIC_RELAXED);
    for (int64_t i = b; i < e; i++)
        p->hits[i]++;   /* each item has one owner: no race */
    __atomic_fetch_add(&p->by_tid[tid], (int)(e - b), __ATOMIC_RELAXED);
}

static void pool_runs_every_item_exactly_once_in_grain_aligned_ranges(void **state)
{
    (void)state;
    pool_t *p;
    assert_int_equal(pool_new(&p, 3, NULL), ENG_OK);
    assert_int_equal(pool_size(p), 3);
    static pool_probe probe;
    const int64_t counts[] = {0, 1, 2, 3, 7, 64, 1001, 5000}, grains[] = {1, 4, 16, 200};
    for (int rep = 0; rep < 50; rep++)
        for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++)
            for (size_t g = 0; g < sizeof grains / sizeof grains[0]; g++) {
                memset(&probe, 0, sizeof probe);
                probe.grain = grains[g];
                probe.n = counts[k];
                pool_run(p, counts[k], grains[g], probe_fn, &probe);
                for (int64_t i = 0; i < 5000; i++)
                    assert_int_equal(probe.hits[i], i < counts[k] ? 1 : 0);
                assert_int_equal(probe.by_tid[0] + probe.by_tid[1] + probe.by_tid[2], counts[k]);
                assert_int_equal(probe.by_tid[3], 0);
                assert_int_equal(probe.bad_ranges, 0);
            }
    pool_free(p);
    assert_int_equal(pool_new(&p, 1, NULL), ENG_OK);   /* no threads: all on the caller */
    memset(&probe, 0, sizeof probe);
    probe.grain = 1;
    probe.n = 10;
    pool_run(p, 10, 1, probe_fn, &probe);
    assert_int_equal(probe.by_tid[0], 10);
    pool_free(p);
}

static void backend_matvec_and_matmul_match_naive_for_every_dtype(void **state)
{
    (void)state;
    void *ctx;
    bk_sizes sz = {.n_threads = 2, .max_in = 1000, .max_rows = 40, .max_keys = 64, .n_heads = 1};
    assert_int_equal(backend_cpu.ctx_new(&ctx, &sz, NULL), ENG_OK);
    for (int t = DT_F32; t <= DT_BF16; t++) {
        int rows = 601, cols = 1000, T = 37;   /* five widened blocks of rows */
        float *we, *wbe;
        tensor_t w = random_tensor((eng_dtype)t, rows, cols, &we);
        tensor_t w2 = random_tensor((eng_dtype)t, 45, cols, &wbe);
        float *x = malloc((size_t)T * cols * sizeof(float));
        float *y = malloc((size_t)T * rows * sizeof(float)), *y1 = malloc((size_t)rows * sizeof(float));
        float *y2 = malloc(45 * sizeof(float));
        for (int i = 0; i < T * cols; i++) x[i] = frand();
        backend_cpu.matmul(ctx, y, x, T, &w);
        bk_matvec jobs[2] = {{y1, &w, x + cols}, {y2, &w2, x + cols}};
        backend_cpu.matvec(ctx, jobs, 2);
        for (int i = 0; i < T; i++)
            for (int r = 0; r < rows; r++) {
                double ref = 0;
                for (int k = 0; k < cols; k++) ref += (double)we[(size_t)r * cols + k] * x[(size_t)i * cols + k];
                assert_true(fabs(y[(size_t)i * rows + r] - ref) <= 1e-4);
                if (i == 1)
                    assert_true(fabs(y1[r] - ref) <= 1e-4);
            }
        for (int r = 0; r < 45; r++) {
            double ref = 0;
            for (int k = 0; k < cols; k++) ref += (double)wbe[(size_t)r * cols + k] * x[cols + k];
            assert_true(fabs(y2[r] - ref) <= 1e-4);
        }
        free((void *)w.data); free(we); free((void *)w2.data); free(wbe);
        free(x); free(y); free(y1); free(y2);
    }
    backend_cpu.ctx_free(ctx);
}

/* The decode attention's batched loops must give exactly the bits of the
 * one-row-at-a-time ones they replaced (the reference fixtures were checked
 * with those), for widths with and without a 16-float remainder. */
static void dot_rows_and_mix_rows_give_the_bits_of_dot_and_axpy(void **state)
{
    (void)state;
    const int widths[] = {7, 16, 24, 64, 80, 128}, counts[] = {1, 15, 16, 17, 40};
    float rows[40 * 128], x[128], p[40], got[128], want[128];
    for (int i = 0; i < 40 * 128; i++) rows[i] = 3 * frand();
    for (int i = 0; i < 128; i++) x[i] = frand();
    for (int i = 0; i < 40; i++) p[i] = frand() + 1.0f;
    for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++)
        for (size_t ci = 0; ci < sizeof counts / sizeof counts[0]; ci++) {
            int n = widths[wi], m = counts[ci];
            kern_dot_rows(got, x, rows, m, n, 0.125f);
            for (int j = 0; j < m; j++)
                want[j] = 0.125f * kern_dot(x, rows + (size_t)j * n, n);
            assert_memory_equal(got, want, (size_t)m * sizeof(float));
            kern_mix_rows(got, p, rows, m, n);
            memset(want, 0, sizeof want);
            for (int j = 0; j < m; j++)
                kern_axpy(want, p[j], rows + (size_t)j * n, n);
            assert_memory_equal(got, want, (size_t)n * sizeof(float));
        }
}

/* Naive causal GQA attention in double for one query row. */
static void naive_attention_row(const float *q, const float *k, const float *v, int cap, int nk,
                                int n_heads, int n_kv, int hd, double *out, double *probs)
{
    for (int h = 0; h < n_heads; h++) {
        int g = h / (n_heads / n_kv);
        double mx = -1e300, sum = 0;
        double *p = probs + (size_t)h * nk;
        for (int j = 0; j < nk; j++) {
            double s = 0;
            for (int d = 0; d < hd; d++)
                s += (double)q[h * hd + d] * k[((size_t)g * cap + j) * hd + d];
            p[j] = s / sqrt(hd);
            mx = fmax(mx, p[j]);
        }
        for (int j = 0; j < nk; j++) sum += (p[j] = exp(p[j] - mx));
        for (int j = 0; j < nk; j++) p[j] /= sum;
        for (int d = 0; d < hd; d++) {
            double o = 0;
            for (int j = 0; j < nk; j++) o += p[j] * v[((size_t)g * cap + j) * hd + d];
            out[h * hd + d] = o;
        }
    }
}

static void attention_matches_naive_with_gqa_on_both_paths(void **state)
{
    (void)state;
    const int n_heads = 6, n_kv = 2, hd = 24, cap = 50, q_dim = n_heads * hd;
    void *ctx;
    bk_sizes sz = {.n_threads = 2, .max_in = 64, .max_rows = 20, .max_keys = cap, .n_heads = n_heads};
    assert_int_equal(backend_cpu.ctx_new(&ctx, &sz, NULL), ENG_OK);
    float *k = malloc((size_t)n_kv * cap * hd * sizeof(float)), *v = malloc((size_t)n_kv * cap * hd * sizeof(float));
    for (int i = 0; i < n_kv * cap * hd; i++) { k[i] = 2 * frand(); v[i] = frand(); }
    const int cases[][2] = {{1, 0}, {1, 29}, {2, 10}, {20, 0}, {13, 30}};   /* T, pos0 */
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        int T = cases[ci][0], pos0 = cases[ci][1], nk = pos0 + T;
        float *q = malloc((size_t)T * q_dim * sizeof(float)), *out = malloc((size_t)T * q_dim * sizeof(float));
        int pnk = nk + 3;   /* observer rows wider than this call's keys */
        float *probs = malloc((size_t)n_heads * T * pnk * sizeof(float));
        for (int i = 0; i < T * q_dim; i++) q[i] = frand();
        bk_attention a = {.q = q, .k = k, .v = v, .kv_stride = cap, .out = out, .T = T, .pos0 = pos0,
                          .n_heads = n_heads, .n_kv_heads = n_kv, .head_dim = hd,
                          .scale = 1.0f / sqrtf((float)hd), .probs = probs, .probs_row0 = 0,
                          .probs_nq = T, .probs_nk = pnk};
        backend_cpu.attention(ctx, &a);
        double ref_out[6 * 24], ref_p[6 * 64];
        for (int i = 0; i < T; i++) {
            naive_attention_row(q + (size_t)i * q_dim, k, v, cap, pos0 + i + 1, n_heads, n_kv, hd, ref_out, ref_p);
            for (int d = 0; d < q_dim; d++)
                assert_true(fabs(out[(size_t)i * q_dim + d] - ref_out[d]) <= 1e-5);
            for (int h = 0; h < n_heads; h++)
                for (int j = 0; j < pnk; j++) {
                    float got = probs[((size_t)h * T + i) * pnk + j];
                    if (j <= pos0 + i)
                        assert_true(fabs(got - ref_p[(size_t)h * (pos0 + i + 1) + j]) <= 1e-6);
                    else
                        assert_true(got == 0.0f);
                }
        }
        free(q); free(out); free(probs);
    }
    free(k); free(v);
    backend_cpu.ctx_free(ctx);
}

/* One query row over 1..70 cached keys (whole blocks of 16 and remainders),
 * at the head sizes of the supported models, 3 query heads per KV head. */
static void decode_attention_matches_naive_at_head_dims_64_and_128(void **state)
{
    (void)state;
    enum { n_heads = 6, n_kv = 2, cap = 70 };
    void *ctx;
    bk_sizes sz = {.n_threads = 2, .max_in = 64, .max_rows = 1, .max_keys = cap, .n_heads = n_heads};
    assert_int_equal(backend_cpu.ctx_new(&ctx, &sz, NULL), ENG_OK);
    for (int hd = 64; hd <= 128; hd += 64) {
        int q_dim = n_heads * hd;
        float *k = malloc((size_t)n_kv * cap * hd * sizeof(float)), *v = malloc((size_t)n_kv * cap * hd * sizeof(float));
        float *q = malloc((size_t)q_dim * sizeof(float)), *out = malloc((size_t)q_dim * sizeof(float));
        double *ref_out = malloc((size_t)q_dim * sizeof(double)), *ref_p = malloc((size_t)n_heads * cap * sizeof(double));
        for (int i = 0; i < n_kv * cap * hd; i++) { k[i] = 0.3f * frand(); v[i] = frand(); }
        for (int i = 0; i < q_dim; i++) q[i] = frand();
        const int keys[] = {1, 15, 16, 17, 33, 70};
        for (size_t ki = 0; ki < sizeof keys / sizeof keys[0]; ki++) {
            bk_attention a = {.q = q, .k = k, .v = v, .kv_stride = cap, .out = out, .T = 1, .pos0 = keys[ki] - 1,
                              .n_heads = n_heads, .n_kv_heads = n_kv, .head_dim = hd,
                              .scale = 1.0f / sqrtf((float)hd)};
            backend_cpu.attention(ctx, &a);
            naive_attention_row(q, k, v, cap, keys[ki], n_heads, n_kv, hd, ref_out, ref_p);
            for (int d = 0; d < q_dim; d++)
                assert_true(fabs(out[d] - ref_out[d]) <= 1e-5);
        }
        free(k); free(v); free(q); free(out); free(ref_out); free(ref_p);
    }
    backend_cpu.ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matvec_matches_naive_loops_for_every_dtype),
        cmocka_unit_test(row_conversion_is_exact_for_every_dtype),
        cmocka_unit_test(softmax_matches_exp_and_sums_to_one),
        cmocka_unit_test(silu_mul_matches_the_formula_for_both_signs),
        cmocka_unit_test(pool_runs_every_item_exactly_once_in_grain_aligned_ranges),
        cmocka_unit_test(backend_matvec_and_matmul_match_naive_for_every_dtype),
        cmocka_unit_test(dot_rows_and_mix_rows_give_the_bits_of_dot_and_axpy),
        cmocka_unit_test(attention_matches_naive_with_gqa_on_both_paths),
        cmocka_unit_test(decode_attention_matches_naive_at_head_dims_64_and_128),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
