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

/* A read-bandwidth probe kept between passes, so that passes can alternate
 * with decode steps (same threads, same moment of a shared machine). */
typedef struct roof_reader roof_reader;

/* Allocates (huge pages asked for) and touches a buffer of about `bytes`
 * (rounded down to 256 bytes), and starts n_threads threads. ENG_ENOMEM or
 * ENG_EIO with a message; *out is NULL then. */
int roof_reader_new(roof_reader **out, size_t bytes, int n_threads, eng_err *err);

/* One pass over the whole buffer; returns its milliseconds. */
double roof_reader_pass_ms(roof_reader *r);

size_t roof_reader_bytes(const roof_reader *r);

/* Frees the buffer and joins the threads; accepts NULL. */
void roof_reader_free(roof_reader *r);

/* Best-of-reps milliseconds OpenBLAS (with n_threads threads) needs for the
 * matrix products of a T-token prefill of m, in f32: every layer's q, k, v,
 * o, gate, up and down products with T rows. *flops receives their count. */
int roof_sgemm_prefill_ms(const model_t *m, int T, int n_threads, int reps, double *ms, double *flops,
                          eng_err *err);

#endif
