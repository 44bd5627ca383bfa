/* cmd_logits.c - `attnscope logits`: the logits of every position of a token
 * sequence (and optionally every layer's and head's attention) as float32
 * .npy files, for comparison with transformers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#include "commands.h"
#include "engine_cli.h"
#include "npy.h"

static const char usage[] =
    "usage: attnscope logits (--model DIR | --synthetic NAME [--dtype bf16|f16|f32]) --ids 1,2,3\n"
    "                        --out FILE.npy [--attn FILE.npy] [--no-kv-cache] [--device cpu|cuda] [--threads N]\n"
    "  writes logits [T, vocab] and, with --attn, attention [layers, heads, T, T] (float32 .npy).\n"
    "  With --no-kv-cache the tokens are fed one at a time and each step re-runs the whole context.\n";

int cmd_logits(int argc, char **argv)
{
    const char *cmd = "logits", *dir = NULL, *synth = NULL, *ids_s = NULL, *out = NULL, *attn = NULL;
    const char *device = NULL, *v;
    eng_dtype dtype = DT_BF16;
    bool no_cache = false, have_dtype = false;
    int threads = 0, missing = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if ((v = ecli_opt(cmd, argc, argv, &i, "--model", &missing))) dir = v;
        else if ((v = ecli_opt(cmd, argc, argv, &i, "--synthetic", &missing))) synth = v;
        else if ((v = ecli_opt(cmd, argc, argv, &i, "--ids", &missing))) ids_s = v;
        else if ((v = ecli_opt(cmd, argc, argv, &i, "--out", &missing))) out = v;
        else if ((v = ecli_opt(cmd, argc, argv, &i, "--attn", &missing))) attn = v;
        else if ((v = ecli_opt(cmd, argc, argv, &i, "--device", &missing))) device = v;
        else if ((v = ecli_opt(cmd, argc, argv, &i, "--dtype", &missing))) {
            if (ecli_parse_dtype(cmd, v, &dtype)) return 2;
            have_dtype = true;
        } else if ((v = ecli_opt(cmd, argc, argv, &i, "--threads", &missing))) {
            if (ecli_parse_int(cmd, "--threads", v, 1, 256, &threads)) return 2;
        } else if (strcmp(argv[i], "--no-kv-cache") == 0) no_cache = true;
        else if (!missing) {
            fprintf(stderr, "attnscope %s: unknown option '%s' (see attnscope logits --help)\n", cmd, argv[i]);
            return 2;
        }
        if (missing) return 2;
    }
    if ((!dir) == (!synth) || !ids_s || !out) {
        fprintf(stderr, "attnscope %s: needs one of --model DIR or --synthetic NAME, and --ids and --out (see --help)\n", cmd);
        return 2;
    }
    if (ecli_check_source(cmd, have_dtype, synth, device))
        return 2;
    int *ids, T;
    if (ecli_parse_ids(cmd, ids_s, &ids, &T))
        return 2;

    model_t *m = NULL;
    session_t *s = NULL;
    float *logits = NULL;
    eng_err e = {{0}};
    int code = ecli_open_model(cmd, dir, synth, dtype, &m);
    if (code)
        goto done;
    int rc = ecli_new_session(&s, m, T, threads, device, &e);
    size_t V = (size_t)m->cfg.vocab_size;
    logits = malloc((size_t)T * V * sizeof(float));
    if (rc == ENG_OK && !logits) {
        rc = ENG_ENOMEM;
        snprintf(e.msg, sizeof e.msg, "out of memory for %d x %zu logits", T, V);
    }
    if (rc == ENG_OK) {
        if (no_cache) {
            /* One token at a time, the whole context re-run at each step; the
             * last step's observer rows cover every position. */
            session_set_cache(s, false);
            for (int t = 0; t < T && rc == ENG_OK; t++) {
                session_set_observe(s, attn && t == T - 1);
                rc = session_eval(s, ids + t, 1, NULL, &e);
                if (rc == ENG_OK)
                    memcpy(logits + (size_t)t * V, session_logits(s), V * sizeof(float));
            }
        } else {
            session_set_observe(s, attn != NULL);
            rc = session_eval(s, ids, T, logits, &e);
        }
    }
    if (rc != ENG_OK) {
        fprintf(stderr, "attnscope %s: %s\n", cmd, e.msg);
        code = ecli_exit_code(rc);
        goto done;
    }
    int64_t lshape[2] = {T, (int64_t)V};
    if (npy_write_f32(out, logits, lshape, 2)) {
        fprintf(stderr, "attnscope %s: cannot write %s: %s\n", cmd, out, strerror(errno));
        code = 1;
        goto done;
    }
    if (attn) {
        const config_t *c = &m->cfg;
        int64_t ashape[4] = {c->n_layers, c->n_heads, T, T};
        FILE *f = npy_begin(attn, ashape, 4);
        bool ok = f != NULL;
        for (int l = 0; ok && l < c->n_layers; l++) {
            int q0, nq, nk;
            const float *p = session_attn(s, l, &q0, &nq, &nk);
            size_t count = (size_t)c->n_heads * T * T;
            ok = p && q0 == 0 && nq == T && nk == T && fwrite(p, sizeof(float), count, f) == count;
        }
        if (f && npy_end(f))
            ok = false;
        if (!ok) {
            fprintf(stderr, "attnscope %s: cannot write %s: %s\n", cmd, attn, strerror(errno));
            code = 1;
        }
    }
done:
    free(logits);
    free(ids);
    session_free(s);
    model_close(m);
    return code;
}
