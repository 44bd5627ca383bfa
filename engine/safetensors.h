/* safetensors.h - read-only, mmap-backed access to the tensors of one
 * .safetensors file or of a sharded set (model.safetensors.index.json). */
#ifndef ENGINE_SAFETENSORS_H
#define ENGINE_SAFETENSORS_H

#include "common.h"

#define ST_MAX_DIMS 4

/* One tensor. data points into the file's read-only mapping and stays valid
 * until st_close; nothing is copied or converted. */
typedef struct {
    const char *name;        /* HF name, e.g. "model.layers.0.self_attn.q_proj.weight" */
    const char *file;        /* basename of the file holding it (for messages) */
    eng_dtype dtype;
    int ndim;                /* 0..ST_MAX_DIMS */
    int64_t shape[ST_MAX_DIMS];
    const void *data;
    size_t nbytes;           /* = product(shape) * dtype_size(dtype) */
} st_tensor;

typedef struct st_set st_set;

/* Opens one .safetensors file. Every header length, offset, dtype and shape is
 * checked against the file size before use. Returns ENG_OK, ENG_EINPUT (a
 * malformed or unsupported file: the message names the file and the tensor or
 * field), ENG_EIO or ENG_ENOMEM; *out is NULL on failure. Free with st_close. */
int st_open_file(st_set **out, const char *path, eng_err *err);

/* Opens the weights of a Hugging Face folder: dir/model.safetensors.index.json
 * with its shards when present, else dir/model.safetensors. Every tensor the
 * index maps must be in the shard it names; a tensor name present twice is an
 * error. Errors as st_open_file. */
int st_open_dir(st_set **out, const char *dir, eng_err *err);

/* The tensor called name, or NULL. O(log n). */
const st_tensor *st_find(const st_set *s, const char *name);

int st_count(const st_set *s);
const st_tensor *st_get(const st_set *s, int i);   /* sorted by name; i in [0, count) */
size_t st_file_bytes(const st_set *s);            /* total size of the mapped files */
const char *st_source(const st_set *s);           /* the path opened: the index or the file */

/* Unmaps and frees everything; accepts NULL. */
void st_close(st_set *s);

#endif
