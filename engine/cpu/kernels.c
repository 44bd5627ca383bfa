/* kernels.c - the CPU inner loops (see kernels.h): weight rows are widened to
 * f32 in registers, never in memory, and multiplied against f32 activations. */
#include "kernels.h"

#include <math.h>
#include <string.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#define KERN_AVX512 1
#elif defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#define KERN_AVX2 1   /* matvec, widening and dot in 8-wide vectors; the rest plain C */
#endif

/* ---------------------------------------------------------------- widening */

#ifdef KERN_AVX512
/* 16 bf16 -> 16 f32: a bf16 is the top half of an f32. */
static inline __m512 load16_bf16(const uint16_t *p)
{
    __m256i h = _mm256_loadu_si256((const __m256i *)p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

static inline __m512 load16_f16(const uint16_t *p)
{
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}

static inline __m512 load16(const void *base, eng_dtype t, int64_t i)
{
    switch (t) {
    case DT_BF16: return load16_bf16((const uint16_t *)base + i);
    case DT_F16: return load16_f16((const uint16_t *)base + i);
    default: return _mm512_loadu_ps((const float *)base + i);
    }
}
#endif

static inline float load1(const void *base, eng_dtype t, int64_t i)
{
    switch (t) {
    case DT_BF16: return bf16_to_f32(((const uint16_t *)base)[i]);
    case DT_F16: return f16_to_f32(((const uint16_t *)base)[i]);
    default: return ((const float *)base)[i];
    }
}

/* ----------------------------------------------------------------- matvec */

/* Four rows at a time share each load of x; two accumulators per row hide the
 * FMA latency. One specialised copy per dtype keeps the switch out of the loop.
 * The four rows are one contiguous block; while reading it, the loop
 * prefetches the next block at the same relative offset, so the prefetches run
 * exactly one block ahead whatever the row length. On this machine that lifts
 * one core's matvec over 576-wide BF16 rows from ~60% to ~85-95% of its plain
 * read bandwidth (none or a fixed distance within the row: 45-60%). */
#ifdef KERN_AVX512
#define MATVEC_BODY(LOAD, ES)                                                          \
    int64_t r = r0;                                                                \
    for (; r + 4 <= r1; r += 4) {                                                  \
        const uint8_t *w0 = base + (size_t)r * row_bytes;                          \
        const uint8_t *w1 = w0 + row_bytes, *w2 = w1 + row_bytes, *w3 = w2 + row_bytes; \
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                \
        __m512 b0 = a0, b1 = a0, b2 = a0, b3 = a0;                                 \
        int64_t k = 0;                                                             \
        for (; k + 32 <= n; k += 32) {                                             \
            for (int pl = 0; pl < 2 * ES; pl++)                                    \
                _mm_prefetch((const char *)w0 + 4 * row_bytes + (size_t)k * ES * 4 + pl * 64, _MM_HINT_T0); \
            __m512 xa = _mm512_loadu_ps(x + k), xb = _mm512_loadu_ps(x + k + 16);  \
            a0 = _mm512_fmadd_ps(LOAD(w0, k), xa, a0);                             \
            b0 = _mm512_fmadd_ps(LOAD(w0, k + 16), xb, b0);                        \
            a1 = _mm512_fmadd_ps(LOAD(w1, k), xa, a1);                             \
            b1 = _mm512_fmadd_ps(LOAD(w1, k + 16), xb, b1);                        \
            a2 = _mm512_fmadd_ps(LOAD(w2, k), xa, a2);                             \
            b2 = _mm512_fmadd_ps(LOAD(w2, k + 16), xb, b2);                        \
            a3 = _mm512_fmadd_ps(LOAD(w3, k), xa, a3);                             \
            b3 = _mm512_fmadd_ps(LOAD(w3, k + 16), xb, b3);                        \
        }                                                                          \
        for (; k + 16 <= n; k += 16) {                                             \
            __m512 xa = _mm512_loadu_ps(x + k);                                    \
            a0 = _mm512_fmadd_ps(LOAD(w0, k), xa, a0);                             \
            a1 = _mm512_fmadd_ps(LOAD(w1, k), xa, a1);                             \
            a2 = _mm512_fmadd_ps(LOAD(w2, k), xa, a2);                             \
            a3 = _mm512_fmadd_ps(LOAD(w3, k), xa, a3);                             \
        }                                                                          \
        float s0 = _mm512_reduce_add_ps(_mm512_add_ps(a0, b0));                    \
        float s1 = _mm512_reduce_add_ps(_mm512_add_ps(a1, b1));                    \
        float s2 = _mm512_reduce_add_ps(_mm512_add_ps(a2, b2));                    \
        float s3 = _mm512_reduce_add_ps(_mm512_add_ps(a3, b3));                    \
        for (; k < n; k++) {                                                       \
            s0 += load1(w0, w->dtype, k) * x[k];                                   \
            s1 += load1(w1, w->dtype, k) * x[k];                                   \
            s2 += load1(w2, w->dtype, k) * x[k];                                   \
            s3 += load1(w3, w->dtype, k) * x[k];                                   \
        }                                                                          \
        y[r - r0] = s0; y[r - r0 + 1] = s1; y[r - r0 + 2] = s2; y[r - r0 + 3] = s3; \
    }                                                                              \
    for (; r < r1; r++) {                                                          \
        const uint8_t *w0 = base + (size_t)r * row_bytes;                          \
        __m512 a0 = _mm512_setzero_ps();                                           \
        int64_t k = 0;                                                             \
        for (; k + 16 <= n; k += 16)                                               \
            a0 = _mm512_fmadd_ps(LOAD(w0, k), _mm512_loadu_ps(x + k), a0);         \
        float s0 = _mm512_reduce_add_ps(a0);                                       \
        for (; k < n; k++) s0 += load1(w0, w->dtype, k) * x[k];                    \
        y[r - r0] = s0;                                                            \
    }

#define LOAD_BF16(p, k) load16_bf16((const uint16_t *)(p) + (k))
#define LOAD_F16(p, k) load16_f16((const uint16_t *)(p) + (k))
#define LOAD_F32(p, k) _mm512_loadu_ps((const float *)(p) + (k))

static void matvec_bf16(float *y, const tensor_t *w, int64_t r0, int64_t r1, const float *x)
{
    const uint8_t *base = w->data;
    int64_t n = w->shape[1];
    size_t row_bytes = (size_t)n * 2;
    MATVEC_BODY(LOAD_BF16, 2)
}

static void matvec_f16(float *y, const tensor_t *w, int64_t r0, int64_t r1, const float *x)
{
    const uint8_t *base = w->data;
    int64_t n = w->shape[1];
    size_t row_bytes = (size_t)n * 2;
    MATVEC_BODY(LOAD_F16, 2)
}

static void matvec_f32(float *y, const tensor_t *w, int64_t r0, int64_t r1, const float *x)
{
    const uint8_t *base = w->data;
    int64_t n = w->shape[1];
    size_t row_bytes = (size_t)n * 4;
    MATVEC_BODY(LOAD_F32, 4)
}
#endif

#ifdef KERN_AVX2
static inline __m256 load8(const void *base, eng_dtype t, int64_t i)
{
    switch (t) {
    case DT_BF16:
        return _mm256_castsi256_ps(_mm256_slli_epi32(
            _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)base + i))), 16));
    case DT_F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)base + i)));
    default: return _mm256_loadu_ps((const float *)base + i);
    }
}

static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#endif

void kern_matvec_rows(float *y, const tensor_t *w, int64_t r0, int64_t r1, const float *x)
{
#if defined(KERN_AVX512)
    switch (w->dtype) {
    case DT_BF16: matvec_bf16(y, w, r0, r1, x); return;
    case DT_F16: matvec_f16(y, w, r0, r1, x); return;
    default: matvec_f32(y, w, r0, r1, x); return;
    }
#elif defined(KERN_AVX2)
    int64_t n = w->shape[1];
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)w->data + (size_t)r * n * dtype_size(w->dtype);
        __m256 a = _mm256_setzero_ps(), b = a;
        int64_t k = 0;
        for (; k + 16 <= n; k += 16) {
            a = _mm256_fmadd_ps(load8(row, w->dtype, k), _mm256_loadu_ps(x + k), a);
            b = _mm256_fmadd_ps(load8(row, w->dtype, k + 8), _mm256_loadu_ps(x + k + 8), b);
        }
        float s = hsum8(_mm256_add_ps(a, b));
        for (; k < n; k++)
            s += load1(row, w->dtype, k) * x[k];
        y[r - r0] = s;
    }
#else
    int64_t n = w->shape[1];
    for (int64_t r = r0; r < r1; r++) {
        float s = 0.0f;
        for (int64_t k = 0; k < n; k++)
            s += load1(w->data, w->dtype, r * n + k) * x[k];
        y[r - r0] = s;
    }
#endif
}

/* ------------------------------------------------------------- conversion */

static void convert_span(float *dst, const void *src, eng_dtype t, int64_t i0, int64_t count)
{
    int64_t i = 0;
    if (t == DT_F32) {
        memcpy(dst, (const float *)src + i0, (size_t)count * sizeof(float));
        return;
    }
#ifdef KERN_AVX512
    for (; i + 16 <= count; i += 16)
        _mm512_storeu_ps(dst + i, load16(src, t, i0 + i));
#elif defined(KERN_AVX2)
    for (; i + 8 <= count; i += 8)
        _mm256_storeu_ps(dst + i, load8(src, t, i0 + i));
#endif
    for (; i < count; i++)
        dst[i] = load1(src, t, i0 + i);
}

void kern_convert_rows(float *dst, const tensor_t *w, int64_t r0, int64_t r1)
{
    int64_t n = w->shape[1];
    convert_span(dst, w->data, w->dtype, r0 * n, (r1 - r0) * n);
}

void kern_row_f32(float *dst, const tensor_t *w, int64_t r, int64_t n)
{
    convert_span(dst, w->data, w->dtype, r * n, n);
}

/* ------------------------------------------------------------ dot / axpy */

#ifdef KERN_AVX512
/* The lanes of a dot product before the horizontal sum: two accumulators,
 * even and odd 16-float steps (the layout kern_dot sums). n % 16 == 0. */
static inline __m512 dot_lanes(const float *a, const float *b, int n)
{
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
    }
    for (; i + 16 <= n; i += 16)
        acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
    return _mm512_add_ps(acc0, acc1);
}

/* The horizontal sums of v[0..15] as one vector, each added in the order
 * _mm512_reduce_add_ps adds (256-bit halves, then 128, 64 and 32), so that
 * lane u equals _mm512_reduce_add_ps(v[u]) bit for bit. A butterfly: each
 * step halves the lanes of two vectors and packs them into one. */
static inline __m512 reduce_add16(const __m512 v[16])
{
    __m512 c[8], d[4], e[2];
    for (int m = 0; m < 8; m++)   /* lanes i + (i + 8) */
        c[m] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * m], v[2 * m + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_f32x4(v[2 * m], v[2 * m + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    for (int m = 0; m < 4; m++)   /* lanes i + (i + 4) */
        d[m] = _mm512_add_ps(_mm512_shuffle_f32x4(c[2 * m], c[2 * m + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(c[2 * m], c[2 * m + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    for (int m = 0; m < 2; m++)   /* lanes i + (i + 2) */
        e[m] = _mm512_add_ps(_mm512_shuffle_ps(d[2 * m], d[2 * m + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(d[2 * m], d[2 * m + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    __m512 f = _mm512_add_ps(_mm512_shuffle_ps(e[0], e[1], _MM_SHUFFLE(2, 0, 2, 0)),   /* i + (i + 1) */
                             _mm512_shuffle_ps(e[0], e[1], _MM_SHUFFLE(3, 1, 3, 1)));
    /* 128-bit block b of f holds the sums of v[b], v[b + 4], v[b + 8], v[b + 12] */
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    return _mm512_permutexvar_ps(order, f);
}
#endif

float kern_dot(const float *a, const float *b, int n)
{
    int i = 0;
    float s = 0.0f;
#ifdef KERN_AVX512
    i = n & ~15;
    s = _mm512_reduce_add_ps(dot_lanes(a, b, i));
#elif defined(KERN_AVX2)
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    }
    s = hsum8(_mm256_add_ps(acc0, acc1));
#endif
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

void kern_dot_rows(float *out, const float *x, const float *rows, int n_rows, int n, float scale)
{
    int j = 0;
#ifdef KERN_AVX512
    if (n % 16 == 0) {
        __m512 vscale = _mm512_set1_ps(scale);
        for (; j + 16 <= n_rows; j += 16) {
            __m512 v[16];
            for (int u = 0; u < 16; u++)
                v[u] = dot_lanes(x, rows + (size_t)(j + u) * n, n);
            _mm512_storeu_ps(out + j, _mm512_mul_ps(vscale, reduce_add16(v)));
        }
    }
#endif
    for (; j < n_rows; j++)
        out[j] = scale * kern_dot(x, rows + (size_t)j * n, n);
}

void kern_axpy(float *y, float a, const float *x, int n)
{
    int i = 0;
#ifdef KERN_AVX512
    __m512 va = _mm512_set1_ps(a);
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
#elif defined(KERN_AVX2)
    __m256 va = _mm256_set1_ps(a);
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
#endif
    for (; i < n; i++)
        y[i] += a * x[i];
}

void kern_mix_rows(float *y, const float *p, const float *rows, int n_rows, int n)
{
    int d = 0;
#ifdef KERN_AVX512
    /* 64 columns at a time in four registers: four independent FMA chains
     * over the rows instead of a store and reload of y per row. */
    for (; d + 64 <= n; d += 64) {
        __m512 y0 = _mm512_setzero_ps(), y1 = y0, y2 = y0, y3 = y0;
        for (int j = 0; j < n_rows; j++) {
            const float *r = rows + (size_t)j * n + d;
            __m512 pj = _mm512_set1_ps(p[j]);
            y0 = _mm512_fmadd_ps(pj, _mm512_loadu_ps(r), y0);
            y1 = _mm512_fmadd_ps(pj, _mm512_loadu_ps(r + 16), y1);
            y2 = _mm512_fmadd_ps(pj, _mm512_loadu_ps(r + 32), y2);
            y3 = _mm512_fmadd_ps(pj, _mm512_loadu_ps(r + 48), y3);
        }
        _mm512_storeu_ps(y + d, y0);
        _mm512_storeu_ps(y + d + 16, y1);
        _mm512_storeu_ps(y + d + 32, y2);
        _mm512_storeu_ps(y + d + 48, y3);
    }
#endif
    if (d < n) {
        memset(y + d, 0, (size_t)(n - d) * sizeof(float));
        for (int j = 0; j < n_rows; j++)
            kern_axpy(y + d, p[j], rows + (size_t)j * n + d, n - d);
    }
}

/* ---------------------------------------------------------------- softmax */

#ifdef KERN_AVX512
/* exp(x) for x <= 0: x = n ln2 + r with |r| <= ln2/2, a degree-6 polynomial
 * for e^r (relative error ~2e-7), and 2^n applied with scalef. */
static inline __m512 exp512(__m512 x)
{
    const __m512 log2e = _mm512_set1_ps(1.44269504088896341f);
    const __m512 ln2_hi = _mm512_set1_ps(0.693359375f);
    const __m512 ln2_lo = _mm512_set1_ps(-2.12194440e-4f);
    x = _mm512_max_ps(x, _mm512_set1_ps(-104.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, ln2_hi, x);
    r = _mm512_fnmadd_ps(n, ln2_lo, r);
    __m512 p = _mm512_set1_ps(1.0f / 720.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}
#endif

void kern_softmax(float *x, int n)
{
    float mx = x[0];
    int i = 0;
#ifdef KERN_AVX512
    __m512 vmax = _mm512_set1_ps(mx);
    for (; i + 16 <= n; i += 16)
        vmax = _mm512_max_ps(vmax, _mm512_loadu_ps(x + i));
    mx = _mm512_reduce_max_ps(vmax);
#endif
    for (; i < n; i++)
        if (x[i] > mx) mx = x[i];
    float sum = 0.0f;
    i = 0;
#ifdef KERN_AVX512
    __m512 vmx = _mm512_set1_ps(mx), vsum = _mm512_setzero_ps();
    for (; i + 16 <= n; i += 16) {
        __m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i), vmx));
        _mm512_storeu_ps(x + i, e);
        vsum = _mm512_add_ps(vsum, e);
    }
    sum = _mm512_reduce_add_ps(vsum);
#endif
    for (; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    float inv = 1.0f / sum;
    i = 0;
#ifdef KERN_AVX512
    __m512 vinv = _mm512_set1_ps(inv);
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(x + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), vinv));
#endif
    for (; i < n; i++)
        x[i] *= inv;
}

void kern_silu_mul(float *g, const float *u, size_t n)
{
    size_t i = 0;
#ifdef KERN_AVX512
    const __m512 one = _mm512_set1_ps(1.0f);
    for (; i + 16 <= n; i += 16) {
        __m512 x = _mm512_loadu_ps(g + i);
        /* exp(-x) for x of either sign: exp512 wants a non-positive argument,
         * so use exp(-|x|) and fold the sign back in. */
        __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_abs_ps(x)));
        __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
        /* x >= 0: sigmoid = 1 / (1 + e); x < 0: sigmoid = e / (1 + e). */
        __m512 sig = _mm512_div_ps(_mm512_mask_blend_ps(neg, one, e), _mm512_add_ps(one, e));
        _mm512_storeu_ps(g + i, _mm512_mul_ps(_mm512_mul_ps(x, sig), _mm512_loadu_ps(u + i)));
    }
#endif
    for (; i < n; i++)
        g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}
