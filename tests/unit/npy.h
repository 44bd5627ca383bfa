/* npy.h - test helper: reads a little-endian float32, C-order .npy file (the
 * format numpy.save writes: magic, version, a Python-dict header, raw data). */
#ifndef TESTS_NPY_H
#define TESTS_NPY_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

#define NPY_MAX_DIMS 4

typedef struct {
    int ndim;
    int64_t shape[NPY_MAX_DIMS];
    size_t n;          /* number of elements */
    float *data;       /* malloc'd; free with npy_free */
} npy_array;

static inline void npy_free(npy_array *a)
{
    free(a->data);
    a->data = NULL;
}

/*
 *   "\x93NUMPY" | major u8 | minor u8 | header length (u16 LE for v1, u32 LE for v2/v3)
 *   | header: "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" + padding
 *   | data
 * Returns 0 on success; on failure -1 with a reason in why (128 bytes).
 */
static inline int npy_read(const char *path, npy_array *a, char *why)
{
    memset(a, 0, sizeof *a);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, 128, "%s: cannot open", path);
        return -1;
    }
    unsigned char pre[12];
    char *hdr = NULL;
    int rc = -1;
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6)) {
        snprintf(why, 128, "%s: not a .npy file", path);
        goto out;
    }
    size_t hlen;
    if (pre[6] == 1) {
        hlen = pre[8] | (size_t)pre[9] << 8;
    } else if (pre[6] == 2 || pre[6] == 3) {
        if (fread(pre + 10, 1, 2, f) != 2)
            goto trunc;
        hlen = pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    } else {
        snprintf(why, 128, "%s: .npy version %d unsupported", path, pre[6]);
        goto out;
    }
    if (hlen > 1 << 20)
        goto trunc;
    hdr = calloc(1, hlen + 1);
    if (fread(hdr, 1, hlen, f) != hlen)
        goto trunc;
    if (!strstr(hdr, "'descr': '<f4'") || !strstr(hdr, "'fortran_order': False")) {
        snprintf(why, 128, "%s: not little-endian float32 in C order", path);
        goto out;
    }
    const char *p = strstr(hdr, "'shape': (");
    if (!p) {
        snprintf(why, 128, "%s: no shape in the header", path);
        goto out;
    }
    p += 10;
    a->n = 1;
    while (*p && *p != ')') {
        char *end;
        long long d = strtoll(p, &end, 10);
        if (end == p) {
            p++;
            continue;
        }
        if (a->ndim == NPY_MAX_DIMS || d < 0) {
            snprintf(why, 128, "%s: bad shape", path);
            goto out;
        }
        a->shape[a->ndim++] = d;
        a->n *= (size_t)d;
        p = end;
    }
    a->data = malloc(a->n * sizeof(float) + 1);
    if (fread(a->data, sizeof(float), a->n, f) != a->n)
        goto trunc;
    rc = 0;
    goto out;
trunc:
    snprintf(why, 128, "%s: truncated", path);
out:
    if (rc)
        npy_free(a);
    free(hdr);
    fclose(f);
    return rc;
}

#endif
