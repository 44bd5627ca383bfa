/* engine_cli.c - option parsing, file reading and model opening shared by the
 * engine-facing subcommands (see engine_cli.h). */
#include "engine_cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int ecli_bad(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "attnscope %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 2;
}

int ecli_exit_code(int status)
{
    return status == ENG_OK ? 0 : status == ENG_EINPUT ? 2 : 1;
}

int ecli_parse_int(const char *cmd, const char *flag, const char *val, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (errno || end == val || *end || v < lo || v > hi) {
        fprintf(stderr, "attnscope %s: %s wants an integer from %ld to %ld, not '%s'\n", cmd, flag, lo, hi, val);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int ecli_parse_ids(const char *cmd, const char *val, int **ids, int *n)
{
    size_t cap = 1;
    for (const char *p = val; *p; p++)
        cap += *p == ',';
    int *out = malloc(cap * sizeof(int));
    if (!out) {
        fprintf(stderr, "attnscope %s: out of memory\n", cmd);
        return -1;
    }
    int count = 0;
    const char *p = val;
    for (;;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (errno || end == p || v < 0 || v > 0x7fffffff || (*end && *end != ',')) {
            fprintf(stderr, "attnscope %s: --ids wants comma-separated token ids like 1,2,3, not '%s'\n", cmd, val);
            free(out);
            return -1;
        }
        out[count++] = (int)v;
        if (!*end)
            break;
        p = end + 1;
    }
    *ids = out;
    *n = count;
    return 0;
}

int ecli_parse_dtype(const char *cmd, const char *val, eng_dtype *out)
{
    if (strcmp(val, "bf16") == 0) *out = DT_BF16;
    else if (strcmp(val, "f16") == 0) *out = DT_F16;
    else if (strcmp(val, "f32") == 0) *out = DT_F32;
    else {
        fprintf(stderr, "attnscope %s: --dtype wants bf16, f16 or f32, not '%s'\n", cmd, val);
        return -1;
    }
    return 0;
}

int ecli_check_device(const char *cmd, const char *device)
{
    if (!device || strcmp(device, "cpu") == 0)
        return 0;
#ifdef ATTNSCOPE_CUDA
    if (strcmp(device, "cuda") == 0)
        return 0;   /* session_set_device says whether a GPU is there */
#endif
    if (strcmp(device, "cuda") == 0)
        fprintf(stderr, "attnscope %s: --device cuda: this build has no CUDA backend (rebuild with make CUDA=1)\n", cmd);
    else
        fprintf(stderr, "attnscope %s: --device wants cpu or cuda, not '%s'\n", cmd, device);
    return -1;
}

int ecli_check_source(const char *cmd, bool have_dtype, const char *synth, const char *device)
{
    if (have_dtype && !synth) {
        fprintf(stderr, "attnscope %s: --dtype applies to --synthetic models only\n", cmd);
        return -1;
    }
    return ecli_check_device(cmd, device);
}

int ecli_new_session(session_t **s, const model_t *m, int ctx, int threads, const char *device, eng_err *e)
{
    int rc = session_new(s, m, ctx, threads, e);
    if (rc == ENG_OK && device)
        rc = session_set_device(*s, device, threads, e);
    return rc;
}

int ecli_open_model(const char *cmd, const char *dir, const char *synth, eng_dtype dtype, model_t **out)
{
    eng_err e = {{0}};
    int rc = synth ? model_synthetic(out, synth, dtype, 1, &e) : model_open(out, dir, &e);
    if (rc != ENG_OK) {
        fprintf(stderr, "attnscope %s: %s\n", cmd, e.msg[0] ? e.msg : "cannot open the model");
        return ecli_exit_code(rc);
    }
    return 0;
}

const char *ecli_opt(const char *cmd, int argc, char **argv, int *i, const char *name, int *missing)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0)
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (a[n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        fprintf(stderr, "attnscope %s: %s needs a value\n", cmd, name);
        *missing = 1;
        return NULL;
    }
    return argv[++*i];
}

/* OpenBLAS 0.3.21 (Debian 12) picks its kernels by CPU model when it loads and
 * falls back to its SSE3 "Prescott" kernels on models it does not know (such
 * as family 6 model 207 Xeons): sgemm, and so prefill, then runs several
 * times slower than with its AVX-512 kernels. OPENBLAS_CORETYPE overrides the
 * choice, but OpenBLAS reads it in its own constructor, before main() runs
 * and before libc would honour a setenv. So when the variable is unset and
 * the CPU has AVX-512 (or AVX2), the program re-executes itself once, early,
 * with it set. A value the user set is kept; ATTNSCOPE_NO_REEXEC=1 or running
 * under valgrind skips this. */
#define MAX_ENV 4096
static char *new_env[MAX_ENV + 2];

static void prefer_fast_blas(int argc, char **argv, char **envp)
{
    (void)argc;
#if defined(__x86_64__)
    if (!argv || !envp)
        return;
    int n = 0;
    for (; envp[n]; n++) {
        if (strncmp(envp[n], "OPENBLAS_CORETYPE=", 18) == 0 || strncmp(envp[n], "ATTNSCOPE_NO_REEXEC=", 20) == 0)
            return;
        if (strncmp(envp[n], "LD_PRELOAD=", 11) == 0 && strstr(envp[n], "vgpreload"))
            return;
    }
    if (n > MAX_ENV)
        return;
    __builtin_cpu_init();
    static char core[] = "OPENBLAS_CORETYPE=SkylakeX";
    if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
          __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))) {
        if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")))
            return;
        memcpy(core + 18, "Haswell", 8);
    }
    for (int i = 0; i < n; i++)
        new_env[i] = envp[i];
    new_env[n] = core;
    new_env[n + 1] = NULL;
    execve("/proc/self/exe", argv, new_env);   /* returns only on failure: carry on */
#else
    (void)argv;
    (void)envp;
#endif
}
__attribute__((section(".preinit_array"), used))
static void (*const preinit_prefer_fast_blas)(int, char **, char **) = prefer_fast_blas;

char *ecli_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0, k;
    char chunk[65536];
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (n + k + 1 > cap) {
            cap = (n + k + 1) * 2;
            char *p = realloc(buf, cap);
            if (!p) { free(buf); fclose(f); return NULL; }
            buf = p;
        }
        memcpy(buf + n, chunk, k);
        n += k;
    }
    fclose(f);
    if (!buf && (buf = malloc(1)) == NULL) return NULL;
    buf[n] = '\0';
    if (len) *len = n;
    return buf;
}
