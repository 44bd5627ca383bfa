/* npy.h - writes NumPy .npy files (format version 1.0, little-endian float32),
 * the form the logits and attention outputs take. */
#ifndef REPL_NPY_H
#define REPL_NPY_H

#include <stdint.h>
#include <stdio.h>

/* Writes data (the product of shape[0..ndim-1] floats, row-major) to path as
 * '<f4'. Returns 0, or -1 with errno set (the file may then be partial). */
int npy_write_f32(const char *path, const float *data, const int64_t *shape, int ndim);

/* The same, but the caller streams the data: npy_begin writes the header and
 * returns the open file (NULL and errno on failure); write the floats with
 * fwrite and finish with npy_end, which returns 0 or -1 (errno). */
FILE *npy_begin(const char *path, const int64_t *shape, int ndim);
int npy_end(FILE *f);

#endif
