/* cuda.h - the CUDA backend (built with make CUDA=1): the backend table of
 * backend.h filled by kernels and cuBLAS on the first GPU. Nothing else is
 * exposed; the forward pass in session.c stays the same. */
#ifndef ENGINE_CUDA_CUDA_H
#define ENGINE_CUDA_CUDA_H

#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The table: ctx_new fails with ENG_EDEVICE (message says why) when no CUDA
 * device is usable, ENG_ENOMEM when device memory runs out. */
extern const backend_ops backend_cuda;

/* ENG_OK when a CUDA device can be used; otherwise ENG_EDEVICE with a message
 * naming the CUDA error (no driver, no device). */
int cuda_probe(eng_err *err);

/* ENG_OK, or the first failure a kernel, copy or cuBLAS call of ctx met
 * since ctx_new: ENG_ENOMEM when device memory ran out, ENG_EDEVICE
 * otherwise (the table's calls return nothing; outputs of a failed call are
 * NaN, and every later call of ctx fails the same way). */
int cuda_ctx_status(const void *ctx, eng_err *err);

/* How many times a decode path that is not always taken ran since the
 * program started (tests check which path ran), -1 for an unknown name:
 * "step" decode graphs with the persistent step kernel (ATTNSCOPE_CUDA_STEP=1),
 * "mvr" matvecs through k_mvr (ATTNSCOPE_CUDA_MV=mvr), "mlp" fused MLP kernels
 * (gate/up/down in one; ATTNSCOPE_CUDA_MLP=0: never), "mlp_qkv" those that
 * also computed the next layer's q/k/v (ATTNSCOPE_CUDA_MLP_QKV=1). */
long cuda_launches(const char *path);

#ifdef __cplusplus
}
#endif

#endif
