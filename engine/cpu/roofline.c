/* roofline.c - read bandwidth and reference sgemm timings (see roofline.h). */
#include "cpu/roofline.h"
#include "cpu/pool.h"

#include <cblas.h>
#include <string.h>
#include <sys/mman.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

typedef struct {
    const float *buf;
    size_t n;
    float sums[256];
} read_task;

#define READ_CHUNK (1 << 14)   /* floats: 64 KiB per item */

static void read_range(void *arg, int64_t chunk_b, int64_t chunk_e, int tid)
{
    read_task *t = arg;
    int64_t b = chunk_b * READ_CHUNK, e = chunk_e * READ_CHUNK < (int64_t)t->n ? chunk_e * READ_CHUNK : (int64_t)t->n;
    const float *p = t->buf;
    float s = 0.0f;
    int64_t i = b;
#if defined(__AVX512F__)
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (; i + 64 <= e; i += 64) {
        a0 = _mm512_add_ps(a0, _mm512_load_ps(p + i));
        a1 = _mm512_add_ps(a1, _mm512_load_ps(p + i + 16));
        a2 = _mm512_add_ps(a2, _mm512_load_ps(p + i + 32));
        a3 = _mm512_add_ps(a3, _mm512_load_ps(p + i + 48));
    }
    s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
#endif
    for (; i < e; i++)
        s += p[i];
    t->sums[tid & 255] += s;
}

struct roof_reader {
    void *raw;
    pool_t *pool;
    read_task t;
};

int roof_reader_new(roof_reader **out, size_t bytes, int n_threads, eng_err *err)
{
    *out = NULL;
    size_t n = bytes / sizeof(float);
    n -= n % 64;
    roof_reader *r = eng_calloc(1, sizeof *r);
    if (!r)
        return eng_fail(err, ENG_ENOMEM, "read bandwidth: out of memory");
    r->raw = eng_malloc(n * sizeof(float) + 64);
    if (!r->raw) {
        eng_free(r);
        return eng_fail(err, ENG_ENOMEM, "read bandwidth: cannot allocate %zu bytes", bytes);
    }
    float *buf = (float *)(((uintptr_t)r->raw + 63) & ~(uintptr_t)63);
    /* huge pages, as model_synthetic gives its weights, so the roofline is the best read this machine does */
    uintptr_t a = ((uintptr_t)r->raw + (2u << 20) - 1) & ~(uintptr_t)((2u << 20) - 1);
    uintptr_t b = ((uintptr_t)r->raw + (n * sizeof(float) + 64)) & ~(uintptr_t)((2u << 20) - 1);
    if (b > a)
        madvise((void *)a, b - a, MADV_HUGEPAGE);
    for (size_t i = 0; i < n; i++)
        buf[i] = (float)(i & 7);
    int rc = pool_new(&r->pool, n_threads, err);
    if (rc != ENG_OK) {
        eng_free(r->raw);
        eng_free(r);
        return rc;
    }
    r->t.buf = buf;
    r->t.n = n;
    *out = r;
    return ENG_OK;
}

double roof_reader_pass_ms(roof_reader *r)
{
    double t0 = eng_now_ms();
    pool_run(r->pool, (int64_t)((r->t.n + READ_CHUNK - 1) / READ_CHUNK), 1, read_range, &r->t);
    return eng_now_ms() - t0;
}

size_t roof_reader_bytes(const roof_reader *r) { return r->t.n * sizeof(float); }

void roof_reader_free(roof_reader *r)
{
    if (!r)
        return;
    pool_free(r->pool);
    eng_free(r->raw);
    eng_free(r);
}

int roof_read_bandwidth(size_t bytes, int n_threads, int reps, double *bytes_per_s, eng_err *err)
{
    roof_reader *r;
    int rc = roof_reader_new(&r, bytes, n_threads, err);
    if (rc != ENG_OK)
        return rc;
    double best = 1e30;
    for (int i = 0; i < reps + 1; i++) {   /* the first pass warms up */
        double ms = roof_reader_pass_ms(r);
        if (i > 0 && ms < best)
            best = ms;
    }
    *bytes_per_s = (double)roof_reader_bytes(r) / (best / 1000.0);
    roof_reader_free(r);
    return ENG_OK;
}

int roof_sgemm_prefill_ms(const model_t *m, int T, int n_threads, int reps, double *ms, double *flops,
                          eng_err *err)
{
    const config_t *c = &m->cfg;
    int64_t q_dim = config_q_dim(c), kv_dim = config_kv_dim(c), d = c->dim, h = c->hidden_dim;
    int64_t shapes[7][2] = {{q_dim, d}, {kv_dim, d}, {kv_dim, d}, {d, q_dim}, {h, d}, {h, d}, {d, h}};
    int64_t max_in = d > h ? d : h, max_out = max_in;
    if (q_dim > max_in) max_in = max_out = q_dim;
    float *a = eng_malloc((size_t)T * max_in * sizeof(float));
    float *b = eng_malloc((size_t)max_out * max_in * sizeof(float));
    float *y = eng_malloc((size_t)T * max_out * sizeof(float));
    if (!a || !b || !y) {
        eng_free(a); eng_free(b); eng_free(y);
        return eng_fail(err, ENG_ENOMEM, "sgemm reference: out of memory");
    }
    for (int64_t i = 0; i < T * max_in; i++) a[i] = (float)((i % 13) - 6) * 0.01f;
    for (int64_t i = 0; i < max_out * max_in; i++) b[i] = (float)((i % 7) - 3) * 0.01f;
    openblas_set_num_threads(n_threads);
    double best = 1e30, fl = 0;
    for (int r = 0; r < reps + 1; r++) {
        double total = 0;
        fl = 0;
        for (int k = 0; k < 7; k++) {
            int out = (int)shapes[k][0], in = (int)shapes[k][1];
            double t0 = eng_now_ms();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, out, in, 1.0f, a, in, b, in, 0.0f, y, out);
            total += eng_now_ms() - t0;
            fl += 2.0 * T * out * in;
        }
        if (r > 0 && total < best)
            best = total;
    }
    openblas_set_num_threads(1);   /* the backend runs OpenBLAS inside its own threads */
    eng_free(a); eng_free(b); eng_free(y);
    *ms = best * c->n_layers;
    *flops = fl * c->n_layers;
    return ENG_OK;
}
