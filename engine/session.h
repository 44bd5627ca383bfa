/* session.h - running a model: the token history, the KV cache (switchable on
 * and off between any two tokens), logits, the attention observer and timings. */
#ifndef ENGINE_SESSION_H
#define ENGINE_SESSION_H

#include "common.h"
#include "model.h"

typedef struct session session_t;

/* Creates a session over model m (borrowed: m must outlive the session) with
 * room for max_seq tokens (0 = the model's max_seq_len, capped at 4096). The
 * KV cache and all run buffers are allocated here, once; the token loop never
 * allocates. n_threads 0 = all cores. Cache starts on, observer off. */
int session_new(session_t **out, const model_t *m, int max_seq, int n_threads, eng_err *err);
void session_free(session_t *s);               /* accepts NULL */

const model_t *session_model(const session_t *s);
int session_len(const session_t *s);           /* tokens in the context */
int session_max(const session_t *s);           /* capacity in tokens */
const int *session_tokens(const session_t *s); /* the context's token ids */

/* Appends n tokens and runs the model over them. With the cache on, only the
 * new tokens go through the network (n > 1: prefill with matrix-matrix
 * products; n == 1: decode with matrix-vector products). With the cache off,
 * the whole context is re-run from position 0. Afterwards session_logits()
 * holds the logits of the last position. If all_logits is not NULL it
 * receives [n][vocab] logits for the n appended positions.
 * Returns ENG_ERANGE (nothing appended) when the context would overflow. */
int session_eval(session_t *s, const int *tokens, int n, float *all_logits, eng_err *err);

const float *session_logits(const session_t *s);   /* [vocab] of the last position */

/* Drops tokens so that n remain (0 <= n <= len). With the cache on the cached
 * keys/values of the first n positions stay valid: nothing is recomputed. */
int session_rewind(session_t *s, int n);

/* Cache on/off takes effect at the next session_eval. Turning it on after it
 * was off refills the cache for the current context on the next eval. */
void session_set_cache(session_t *s, bool on);
bool session_cache(const session_t *s);
size_t session_kv_bytes(const session_t *s);       /* bytes in use for len tokens */
size_t session_kv_bytes_max(const session_t *s);   /* bytes allocated */

/* Observer. When on, every session_eval records the attention probabilities
 * of every layer and head for each query position it computed. When off (the
 * default) nothing is recorded and nothing is paid. The buffer grows to
 * n_layers x n_heads x n_q x n_k floats: one row per head for a decode step
 * with the cache on, but len x len per head with the cache off (smollm2-135m
 * at 2048 tokens: 4.5 GB), so a long cache-off run with the observer on can
 * fail with ENG_ENOMEM (nothing appended). */
void session_set_observe(session_t *s, bool on);

/* The attention rows of the last eval for one layer:
 * probs[(h * n_q + i) * n_k + j] is head h, query position q0 + i, key j
 * (keys 0..n_k-1 are context positions; j > q0 + i is 0, masked).
 * Returns NULL when the observer was off. */
const float *session_attn(const session_t *s, int layer, int *q0, int *n_q, int *n_k);

typedef struct {
    int n_tokens;        /* tokens appended by the last eval */
    int n_computed;      /* positions run through the network (= context with cache off) */
    bool prefill;        /* n_tokens > 1 with the cache on, or any cache-off eval */
    bool cache;          /* cache setting used */
    double ms;           /* wall time of the eval */
} session_timing;

session_timing session_last_timing(const session_t *s);

/* ---- additions: sizes for benchmarks and memory accounting ---- */

/* Bytes of weights one decode step reads: every layer's matrices and norms,
 * the final norm, lm_head, and one embedding row. */
size_t session_decode_weight_bytes(const session_t *s);

/* Bytes of the run buffers and compute scratch allocated by session_new
 * (activations), not counting the KV cache or the observer. */
size_t session_run_bytes(const session_t *s);

int session_threads(const session_t *s);       /* compute threads in use */

/* The compute device: "cpu", or "cuda" in a CUDA build (make CUDA=1). The KV
 * cache and the token history stay in host memory, so a switch between any
 * two tokens keeps the conversation. n_threads as in session_new. Returns
 * ENG_EDEVICE (the session stays where it was) when the device cannot be
 * used, ENG_EINPUT for an unknown name. */
int session_set_device(session_t *s, const char *device, int n_threads, eng_err *err);
const char *session_device(const session_t *s);

#endif
