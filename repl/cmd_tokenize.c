/* cmd_tokenize.c - `attnscope tokenize`: the token ids of a text under a model
 * folder's tokenizer.json, as a JSON array on stdout (and, with --bench, the
 * encode throughput on a file). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "engine.h"
#include "engine_cli.h"

static const char usage[] =
    "usage: attnscope tokenize --model DIR [--add-special] [--] TEXT\n"
    "       attnscope tokenize --model DIR --file FILE [--add-special]\n"
    "       attnscope tokenize --model DIR --bench FILE [--repeat N]\n"
    "  Prints the JSON array of token ids that DIR's tokenizer.json gives TEXT\n"
    "  (DIR needs only tokenizer.json and, if present, tokenizer_config.json).\n"
    "  --add-special  apply the post-processor (e.g. BOS for Llama 2)\n"
    "  --file FILE    tokenize the bytes of FILE instead of TEXT\n"
    "  --decode       read TEXT as a JSON id array (or comma list) and print the text\n"
    "  --bench FILE   encode FILE N times (default 5) on one thread and print\n"
    "                 MB/s (best and median; wall clock and thread CPU time) as JSON\n";

static double thread_cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int bench(tokenizer_t *t, const char *path, int repeat)
{
    size_t len = 0;
    char *text = ecli_slurp(path, &len);
    if (!text) return ecli_bad("tokenize", "cannot read %s", path);
    double *mbs = calloc((size_t)repeat, sizeof *mbs), *cpu = calloc((size_t)repeat, sizeof *cpu);
    size_t n_ids = 0;
    eng_err err = {{0}};
    int rc = ENG_OK;
    for (int r = 0; r < repeat && rc == ENG_OK && mbs && cpu; r++) {
        int *ids = NULL;
        double t0 = eng_now_ms(), c0 = thread_cpu_ms();
        rc = tok_encode(t, text, len, false, &ids, &n_ids, &err);
        double ms = eng_now_ms() - t0, cms = thread_cpu_ms() - c0;
        eng_free(ids);
        mbs[r] = (double)len / 1e6 / (ms / 1e3);
        cpu[r] = (double)len / 1e6 / (cms / 1e3);
    }
    free(text);
    if (!mbs || !cpu) { free(mbs); free(cpu); return 1; }
    if (rc) { free(mbs); free(cpu); fprintf(stderr, "attnscope tokenize: %s\n", err.msg); return ecli_exit_code(rc); }
    qsort(mbs, (size_t)repeat, sizeof *mbs, cmp_double);
    qsort(cpu, (size_t)repeat, sizeof *cpu, cmp_double);
    /* wall clock is what a user waits; thread CPU time shows the code's own
     * speed when other processes share the cores */
    printf("{\"file\": \"%s\", \"bytes\": %zu, \"tokens\": %zu, \"repeat\": %d, \"threads\": 1, "
           "\"mb_s_best\": %.2f, \"mb_s_median\": %.2f, \"cpu_mb_s_best\": %.2f, \"cpu_mb_s_median\": %.2f}\n",
           path, len, n_ids, repeat, mbs[repeat - 1], mbs[repeat / 2], cpu[repeat - 1], cpu[repeat / 2]);
    free(mbs);
    free(cpu);
    return 0;
}

/* "[1, 2, 3]" or "1,2,3" -> ids */
static int parse_ids(const char *s, int **out, size_t *n)
{
    size_t cap = 16;
    *n = 0;
    *out = malloc(cap * sizeof **out);
    if (!*out) return 1;
    while (*s) {
        if (strchr("[], \t\n", *s)) { s++; continue; }
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v > 0x7fffffff) return 2;
        if (*n == cap) {
            int *p = realloc(*out, (cap *= 2) * sizeof *p);
            if (!p) return 1;
            *out = p;
        }
        (*out)[(*n)++] = (int)v;
        s = end;
    }
    return 0;
}

int cmd_tokenize(int argc, char **argv)
{
    const char *model = NULL, *text = NULL, *file = NULL, *bench_file = NULL;
    bool add_special = false, decode = false, rest = false;
    int repeat = 5;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (rest || a[0] != '-' || a[1] == 0) {
            if (text) return ecli_bad("tokenize", "one TEXT only (quote it; see --help)");
            text = a;
        } else if (strcmp(a, "--") == 0) {
            rest = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(a, "--add-special") == 0) {
            add_special = true;
        } else if (strcmp(a, "--decode") == 0) {
            decode = true;
        } else if (strcmp(a, "--model") == 0 || strcmp(a, "--file") == 0 || strcmp(a, "--bench") == 0 ||
                   strcmp(a, "--repeat") == 0) {
            if (i + 1 >= argc) return ecli_bad("tokenize", "%s needs a value", a);
            const char *v = argv[++i];
            if (a[2] == 'm') model = v;
            else if (a[2] == 'f') file = v;
            else if (a[2] == 'b') bench_file = v;
            else {
                char *end;
                long r = strtol(v, &end, 10);
                if (*end || r < 1 || r > 1000) return ecli_bad("tokenize", "--repeat needs a number from 1 to 1000");
                repeat = (int)r;
            }
        } else {
            return ecli_bad("tokenize", "unknown option '%s' (see --help)", a);
        }
    }
    if (!model) return ecli_bad("tokenize", "--model DIR is required");
    if (!bench_file && !text && !file) return ecli_bad("tokenize", "no TEXT given (see --help)");
    if (text && file) return ecli_bad("tokenize", "give TEXT or --file, not both");

    tokenizer_t *t = NULL;
    eng_err err = {{0}};
    int rc = tok_open(&t, model, &err);
    if (rc) {
        fprintf(stderr, "attnscope tokenize: %s\n", err.msg);
        return rc == ENG_EIO ? 2 : ecli_exit_code(rc);   /* a folder without tokenizer.json is bad input */
    }
    if (bench_file) {
        int r = bench(t, bench_file, repeat);
        tok_close(t);
        return r;
    }
    size_t len = 0;
    char *owned = NULL;
    if (file) {
        owned = ecli_slurp(file, &len);
        if (!owned) { tok_close(t); return ecli_bad("tokenize", "cannot read %s", file); }
        text = owned;
    } else {
        len = strlen(text);
    }
    int exit_code = 0;
    if (decode) {
        int *ids = NULL;
        size_t n = 0;
        int pr = parse_ids(text, &ids, &n);
        char *out = NULL;
        size_t ol = 0;
        if (pr == 2) exit_code = ecli_bad("tokenize", "--decode: TEXT must be a list of token ids");
        else if (pr) exit_code = 1;
        else if ((rc = tok_decode(t, ids, n, false, &out, &ol, &err))) {
            fprintf(stderr, "attnscope tokenize: %s\n", err.msg);
            exit_code = ecli_exit_code(rc);
        } else {
            fwrite(out, 1, ol, stdout);
            fputc('\n', stdout);
        }
        eng_free(out);
        free(ids);
    } else {
        int *ids = NULL;
        size_t n = 0;
        rc = tok_encode(t, text, len, add_special, &ids, &n, &err);
        if (rc) {
            fprintf(stderr, "attnscope tokenize: %s\n", err.msg);
            exit_code = ecli_exit_code(rc);
        } else {
            fputc('[', stdout);
            for (size_t i = 0; i < n; i++) printf(i ? ", %d" : "%d", ids[i]);
            fputs("]\n", stdout);
        }
        eng_free(ids);
    }
    free(owned);
    tok_close(t);
    if (fflush(stdout) != 0 && exit_code == 0) exit_code = 1;
    return exit_code;
}
