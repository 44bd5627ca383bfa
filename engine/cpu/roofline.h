/* roofline.h - this machine's limits, measured the way the engine works: the
 * memory read bandwidth (which bounds decode) and OpenBLAS's sgemm time on a
 * model's prefill shapes (which bounds prefill). Used by `attnscope bench`. */
#ifndef ENGINE_CPU_ROOFLINE_H
#define ENGINE_CPU_ROOFLINE_H

#include "common.h"
#include "model.h"

/* Reads a buffer of `bytes` (touched first) with n_threads threads, `reps`
 * times, and reports the best rate in bytes per second. */
int roof_read_bandwidth(size_t bytes, int n_threads, int reps, double *bytes_per_s, eng_err *err);

/* Best-of-reps milliseconds OpenBLAS (with n_threads threads) needs for the
 * matrix products of a T-token prefill of m, in f32: every layer's q, k, v,
 * o, gate, up and down products with T rows. *flops receives their count. */
int roof_sgemm_prefill_ms(const model_t *m, int T, int n_threads, int reps, double *ms, double *flops,
                          eng_err *err);

#endif
