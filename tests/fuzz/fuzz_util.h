/* fuzz_util.h - helpers shared by the fuzz targets: reading a fixture file,
 * writing a fuzz input into a private scratch folder, and a check that traps
 * (so both libFuzzer and the plain corpus replay see a broken invariant). */
#ifndef FUZZ_UTIL_H
#define FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <ftw.h>

/* Stops the process at a broken invariant: a crash the fuzzer records. */
#define FUZZ_CHECK(cond)                                                        \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond); \
            __builtin_trap();                                                   \
        }                                                                       \
    } while (0)

static inline int fuzz_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* A scratch folder private to this process (created once, under /dev/shm when
 * it exists so that writing the input costs no disk I/O). */
static char fuzz_dir[256];

static inline void fuzz_scratch_remove(void)
{
    if (fuzz_dir[0]) nftw(fuzz_dir, fuzz_rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static inline const char *fuzz_scratch(void)
{
    char *dir = fuzz_dir;
    if (!dir[0]) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(dir, sizeof fuzz_dir, "%s/attnscope-fuzz-%ld", base, (long)getpid());
        mkdir(dir, 0700);
        atexit(fuzz_scratch_remove);
    }
    return dir;
}

/* Writes n bytes to DIR/name (DIR = fuzz_scratch()); 0 on success. */
static inline int fuzz_write(const char *name, const void *data, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", fuzz_scratch(), name);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = n ? fwrite(data, 1, n, f) : 0;
    return (fclose(f) == 0 && w == n) ? 0 : -1;
}

/* Whole file into a malloc'd NUL-terminated buffer, or NULL. */
static inline char *fuzz_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = (cap ? cap * 2 : 8192);
            char *nb = realloc(buf, cap);
            if (!nb) { free(buf); fclose(f); return NULL; }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
    }
    fclose(f);
    buf[n] = '\0';
    if (len) *len = n;
    return buf;
}

/* The fixture root: $ATTNSCOPE_ROOT, else the current folder (the repository). */
static inline const char *fuzz_root(void)
{
    const char *r = getenv("ATTNSCOPE_ROOT");
    return r && *r ? r : ".";
}

#endif
