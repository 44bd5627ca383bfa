/* fuzz_safetensors.c - fuzz target: the safetensors header parser (one file)
 * and the sharded index parser (model.safetensors.index.json over two small
 * valid shards). The first input byte picks the mode; the rest is the file. */
#include <stdint.h>
#include <stddef.h>

#include "fuzz_util.h"
#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Writes a valid shard holding one F32 tensor called name, shape [2, 2]. */
static void st_fz_shard(const char *file, const char *name)
{
    char hdr[256];
    int h = snprintf(hdr, sizeof hdr,
                     "{\"%s\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", name);
    size_t padded = ((size_t)h + 7) & ~(size_t)7;
    unsigned char buf[8 + 256 + 16];
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    memcpy(buf + 8, hdr, (size_t)h);
    memset(buf + 8 + h, ' ', padded - (size_t)h);
    memset(buf + 8 + padded, 0, 16);
    FUZZ_CHECK(fuzz_write(file, buf, 8 + padded + 16) == 0);
}

/* Every tensor accepted must be self-consistent and readable end to end. */
static void st_fz_walk(const st_set *s)
{
    int n = st_count(s);
    FUZZ_CHECK(n >= 0);
    volatile unsigned char sink = 0;
    for (int i = 0; i < n; i++) {
        const st_tensor *t = st_get(s, i);
        FUZZ_CHECK(t && t->name && t->ndim >= 0 && t->ndim <= ST_MAX_DIMS);
        size_t numel = 1;
        for (int d = 0; d < t->ndim; d++) {
            FUZZ_CHECK(t->shape[d] >= 0);
            numel *= (size_t)t->shape[d];
        }
        FUZZ_CHECK(t->nbytes == numel * dtype_size(t->dtype));
        FUZZ_CHECK(t->nbytes <= st_file_bytes(s));
        if (t->nbytes) {
            const unsigned char *p = t->data;
            sink ^= p[0];
            sink ^= p[t->nbytes - 1];
        }
        FUZZ_CHECK(st_find(s, t->name) == t);
    }
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        char sub[512];
        snprintf(sub, sizeof sub, "%s/idx", fuzz_scratch());
        mkdir(sub, 0700);
        st_fz_shard("idx/a.safetensors", "x");
        st_fz_shard("idx/b.safetensors", "y");
        ready = 1;
    }
    if (size < 1) return 0;
    st_set *s = NULL;
    eng_err err;
    char path[512];
    int rc;
    if (data[0] & 1) {
        FUZZ_CHECK(fuzz_write("idx/model.safetensors.index.json", data + 1, size - 1) == 0);
        snprintf(path, sizeof path, "%s/idx", fuzz_scratch());
        rc = st_open_dir(&s, path, &err);
    } else {
        FUZZ_CHECK(fuzz_write("one.safetensors", data + 1, size - 1) == 0);
        snprintf(path, sizeof path, "%s/one.safetensors", fuzz_scratch());
        rc = st_open_file(&s, path, &err);
    }
    if (rc == ENG_OK) {
        FUZZ_CHECK(s != NULL);
        st_fz_walk(s);
        st_close(s);
    } else {
        FUZZ_CHECK(s == NULL);
        FUZZ_CHECK(err.msg[0] != '\0' && memchr(err.msg, '\0', sizeof err.msg));
    }
    return 0;
}
