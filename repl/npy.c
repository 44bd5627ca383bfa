/* npy.c - the .npy writer (see npy.h). Format 1.0: the magic "\x93NUMPY",
 * version 1 0, a little-endian u16 header length, then a Python dict literal
 * padded with spaces and a newline so that the data starts at a multiple of
 * 64 bytes, then the raw array.
 *
 *   +--------+-----+-----+---------+---------------------------------+------+
 *   | \x93NUMPY | 01 | 00 | len u16 | {'descr': '<f4', ...}   ... \n | data |
 *   +--------+-----+-----+---------+---------------------------------+------+
 */
#include "npy.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

FILE *npy_begin(const char *path, const int64_t *shape, int ndim)
{
    char dict[256];
    int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int i = 0; i < ndim; i++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%" PRId64 "%s", shape[i],
                      ndim == 1 ? "," : (i + 1 < ndim ? ", " : ""));
    n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
    /* 10 bytes of preamble + dict + padding + '\n' = a multiple of 64. */
    int total = 10 + n + 1;
    int pad = (64 - total % 64) % 64;
    int hlen = n + pad + 1;
    if (hlen + 10 > (int)sizeof dict + 64) {
        errno = EINVAL;
        return NULL;
    }
    FILE *f = fopen(path, "wb");
    if (!f)
        return NULL;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hlen & 0xff),
                             (unsigned char)(hlen >> 8)};
    fwrite(pre, 1, sizeof pre, f);
    fwrite(dict, 1, (size_t)n, f);
    for (int i = 0; i < pad; i++)
        fputc(' ', f);
    fputc('\n', f);
    if (ferror(f)) {
        int e = errno;
        fclose(f);
        errno = e ? e : EIO;
        return NULL;
    }
    return f;
}

int npy_end(FILE *f)
{
    int bad = ferror(f);
    int e = errno;
    if (fclose(f) != 0 || bad) {
        errno = e ? e : EIO;
        return -1;
    }
    return 0;
}

int npy_write_f32(const char *path, const float *data, const int64_t *shape, int ndim)
{
    FILE *f = npy_begin(path, shape, ndim);
    if (!f)
        return -1;
    size_t count = 1;
    for (int i = 0; i < ndim; i++)
        count *= (size_t)shape[i];
    if (count && fwrite(data, sizeof(float), count, f) != count) {
        int e = errno;
        fclose(f);
        errno = e ? e : EIO;
        return -1;
    }
    return npy_end(f);
}
