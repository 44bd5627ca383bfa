/* cmd_greedy.c - `attnscope greedy`: N argmax continuations of a token
 * sequence as a JSON array (no sampling, no EOS stop), with the cache on or
 * off. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "engine_cli.h"

static const char usage[] =
    "usage: attnscope greedy (--model DIR | --synthetic NAME [--dtype bf16|f16|f32]) --ids 1,2,3 -n N\n"
    "                        [--no-kv-cache] [--device cpu|cuda] [--threads N]\n"
    "  prints the N greedy (argmax) ids as a JSON array; EOS does not stop it.\n";

static int argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

int cmd_greedy(int argc, char **argv)
{
    const char *cmd = "greedy", *dir = NULL, *synth = NULL, *ids_s = NULL, *device = NULL, *v;
    eng_dtype dtype = DT_BF16;
    bool no_cache = false, have_dtype = false;
    int threads = 0, n = -1, missing = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if ((v = ecli_opt(cmd, argc, argv, &i, "--model", &missing))) dir = v;
        else if ((v = ecli_opt(cmd, argc, argv, &i, "--synthetic", &missing))) synth = v;
        else if ((v = ecli_opt(cmd, argc, argv, &i, "--ids", &missing))) ids_s = v;
        else if ((v = ecli_opt(cmd, argc, argv, &i, "--device", &missing))) device = v;
        else if ((v = ecli_opt(cmd, argc, argv, &i, "-n", &missing))) {
            if (ecli_parse_int(cmd, "-n", v, 1, 1 << 20, &n)) return 2;
        } else if ((v = ecli_opt(cmd, argc, argv, &i, "--dtype", &missing))) {
            if (ecli_parse_dtype(cmd, v, &dtype)) return 2;
            have_dtype = true;
        } else if ((v = ecli_opt(cmd, argc, argv, &i, "--threads", &missing))) {
            if (ecli_parse_int(cmd, "--threads", v, 1, 256, &threads)) return 2;
        } else if (strcmp(argv[i], "--no-kv-cache") == 0) no_cache = true;
        else if (!missing) {
            fprintf(stderr, "attnscope %s: unknown option '%s' (see attnscope greedy --help)\n", cmd, argv[i]);
            return 2;
        }
        if (missing) return 2;
    }
    if ((!dir) == (!synth) || !ids_s || n < 1) {
        fprintf(stderr, "attnscope %s: needs one of --model DIR or --synthetic NAME, and --ids and -n (see --help)\n", cmd);
        return 2;
    }
    if (ecli_check_source(cmd, have_dtype, synth, device))
        return 2;
    int *ids, T;
    if (ecli_parse_ids(cmd, ids_s, &ids, &T))
        return 2;

    model_t *m = NULL;
    session_t *s = NULL;
    int *outs = malloc((size_t)n * sizeof(int));
    eng_err e = {{0}};
    int code = 1;
    if (!outs)
        fprintf(stderr, "attnscope %s: out of memory for %d ids\n", cmd, n);
    else
        code = ecli_open_model(cmd, dir, synth, dtype, &m);
    if (code)
        goto done;
    int rc = ecli_new_session(&s, m, T + n, threads, device, &e);
    if (rc == ENG_OK) {
        session_set_cache(s, !no_cache);
        rc = session_eval(s, ids, T, NULL, &e);
    }
    for (int i = 0; i < n && rc == ENG_OK; i++) {
        outs[i] = argmax(session_logits(s), m->cfg.vocab_size);
        if (i + 1 < n)
            rc = session_eval(s, &outs[i], 1, NULL, &e);
    }
    if (rc != ENG_OK) {
        fprintf(stderr, "attnscope %s: %s\n", cmd, e.msg);
        code = ecli_exit_code(rc);
        goto done;
    }
    putchar('[');
    for (int i = 0; i < n; i++)
        printf(i ? ", %d" : "%d", outs[i]);
    puts("]");
    if (fflush(stdout) != 0)
        code = 1;
done:
    free(outs);
    free(ids);
    session_free(s);
    model_close(m);
    return code;
}
