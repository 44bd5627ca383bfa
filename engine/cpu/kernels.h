/* kernels.h - single-threaded CPU inner loops: fused convert-and-multiply rows
 * of F32/F16/BF16 weights against f32 activations, row conversion for GEMM
 * blocks, dot/axpy and softmax. AVX-512 where the build has it, plain C else. */
#ifndef ENGINE_CPU_KERNELS_H
#define ENGINE_CPU_KERNELS_H

#include "common.h"

/* y[r - r0] = dot(W[r, :], x) for rows r0 <= r < r1 of the 2-D tensor w
 * (shape (rows, cols), any stored dtype). Activations stay f32: weights are
 * widened to f32 in registers and multiplied with FMA. */
void kern_matvec_rows(float *y, const tensor_t *w, int64_t r0, int64_t r1, const float *x);

/* dst[(r - r0) * cols + c] = W[r, c] as f32 for rows r0 <= r < r1. */
void kern_convert_rows(float *dst, const tensor_t *w, int64_t r0, int64_t r1);

/* Row r of a 1-D or 2-D tensor widened to f32 (n = row length). */
void kern_row_f32(float *dst, const tensor_t *w, int64_t r, int64_t n);

float kern_dot(const float *a, const float *b, int n);
void kern_axpy(float *y, float a, const float *x, int n);   /* y += a * x */

/* out[j] = scale * kern_dot(x, rows + j * n, n) for j < n_rows, bit for bit
 * (16 rows share one horizontal sum when n % 16 == 0). */
void kern_dot_rows(float *out, const float *x, const float *rows, int n_rows, int n, float scale);

/* y = sum_j p[j] * rows[j * n ..] for j < n_rows: the same bits as zeroing y
 * and calling kern_axpy(y, p[j], rows + j * n, n) for j = 0, 1, ... */
void kern_mix_rows(float *y, const float *p, const float *rows, int n_rows, int n);

/* g[i] = silu(g[i]) * u[i] = g / (1 + exp(-g)) * u: SwiGLU's gate. */
void kern_silu_mul(float *g, const float *u, size_t n);

/* In-place softmax of x[0..n-1] (n >= 1), in f32 with the max subtracted. */
void kern_softmax(float *x, int n);

#endif
