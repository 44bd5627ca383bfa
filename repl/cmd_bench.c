/* cmd_bench.c - `attnscope bench`: prefill and decode speed with the KV cache
 * on and off (the same prompt and generation for both), per-token latency
 * percentiles, and optionally this machine's roofline (read bandwidth and
 * OpenBLAS sgemm on the same prefill shapes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "commands.h"
#include "engine_cli.h"
#include "cpu/roofline.h"

static const char usage[] =
    "usage: attnscope bench (--model DIR | --synthetic NAME) [--dtype bf16|f16|f32] [--prompt-len P]\n"
    "                       [--gen N] [--cache on|off|both] [--device cpu|cuda] [--threads N] [--json]\n"
    "                       [--repeat R] [--roofline] [--paired] [--membw-mb MB] [--observe]\n"
    "  Times a P-token prefill and N decode steps (greedy) after a warm-up, once per cache\n"
    "  setting (--repeat R: R times, keeping the fastest prefill and the fastest decode run).\n"
    "  Defaults: P 128, N 32, cache both, all cores, dtype bf16 (synthetic only), R 1.\n"
    "  --synthetic NAME: smollm2-135m, smollm2-360m, qwen2.5-0.5b, tinyllama-1.1b, llama-3.2-1b.\n"
    "  --roofline also measures, before each run and once after, the read bandwidth (a\n"
    "  buffer of --membw-mb MB) and OpenBLAS sgemm on this prefill's shapes (best of all),\n"
    "  and reports the fraction of each that decode and prefill reached.\n"
    "  The default buffer is the size of what one decode step reads (weights + KV).\n"
    "  --paired follows each cache-on decode step with one read pass over that buffer (same\n"
    "  threads) and reports the ratio read time / step time for the step's bytes, per pair.\n"
    "  --observe records every layer's attention rows during the runs (the TUI's cost).\n";

typedef struct {
    bool cache;
    double prefill_ms, decode_ms;
    double p0, p50, p90, p99;
    size_t kv_bytes;
    int n_decoded;
    bool paired;
    double pair_p25, pair_p50, pair_p75;   /* read ms / step ms for the step's bytes, per pair */
    double pair_step_min, pair_read_min;   /* ms; the read scaled to the step's bytes */
} bench_run;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted values. */
static double percentile(const double *sorted, int n, double pct)
{
    if (n <= 0)
        return 0;
    int k = (int)(pct / 100.0 * n + 0.999999) - 1;
    if (k < 0) k = 0;
    if (k >= n) k = n - 1;
    return sorted[k];
}

static int argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

/* One timed prefill + decode with the cache on or off, after a warm-up. With
 * rd (cache on), each decode step is followed by one read pass of rd's
 * buffer, scaled to the bytes that step read (weights + KV in use). */
static int run_one(session_t *s, bool cache, const int *prompt, int P, int N, roof_reader *rd, bench_run *r,
                   eng_err *e)
{
    const model_t *m = session_model(s);
    int V = m->cfg.vocab_size, rc, tok;
    size_t nn = (size_t)(N > 0 ? N : 1);
    double *lat = malloc(nn * sizeof(double)), *ratio = malloc(nn * sizeof(double));
    double *rd_ms = malloc(nn * sizeof(double));
    if (!lat || !ratio || !rd_ms) {
        free(lat); free(ratio); free(rd_ms);
        return eng_fail(e, ENG_ENOMEM, "bench: out of memory");
    }
    if (!cache)
        rd = NULL;
    memset(r, 0, sizeof *r);
    r->cache = cache;
    session_set_cache(s, cache);

    /* Warm-up: the same prefill and (cache on) two decode steps, then back to
     * empty. A cache-off decode step is a prefill, so that one is warm already. */
    session_rewind(s, 0);
    rc = session_eval(s, prompt, P, NULL, e);
    for (int i = 0; cache && i < 2 && i < N && rc == ENG_OK; i++) {
        tok = argmax(session_logits(s), V);
        rc = session_eval(s, &tok, 1, NULL, e);
    }
    session_rewind(s, 0);

    if (rc == ENG_OK) {
        double t0 = eng_now_ms();
        rc = session_eval(s, prompt, P, NULL, e);
        r->prefill_ms = eng_now_ms() - t0;
    }
    for (int i = 0; i < N && rc == ENG_OK; i++) {
        tok = argmax(session_logits(s), V);
        double t0 = eng_now_ms();
        rc = session_eval(s, &tok, 1, NULL, e);
        lat[i] = eng_now_ms() - t0;
        r->decode_ms += lat[i];
        r->n_decoded++;
        if (rd && rc == ENG_OK) {
            double step_bytes = (double)(session_decode_weight_bytes(s) + session_kv_bytes(s));
            rd_ms[i] = roof_reader_pass_ms(rd) * step_bytes / (double)roof_reader_bytes(rd);
            ratio[i] = rd_ms[i] / lat[i];
        }
    }
    if (rd && rc == ENG_OK) {
        r->paired = true;
        qsort(ratio, (size_t)N, sizeof *ratio, cmp_double);
        qsort(rd_ms, (size_t)N, sizeof *rd_ms, cmp_double);
        r->pair_p50 = percentile(ratio, N, 50);
        r->pair_p25 = percentile(ratio, N, 25);
        r->pair_p75 = percentile(ratio, N, 75);
        r->pair_read_min = rd_ms[0];
    }
    if (rc == ENG_OK) {
        qsort(lat, (size_t)N, sizeof *lat, cmp_double);
        r->p0 = lat[0];
        r->p50 = percentile(lat, N, 50);
        r->p90 = percentile(lat, N, 90);
        r->p99 = percentile(lat, N, 99);
        r->kv_bytes = session_kv_bytes(s);
        r->pair_step_min = r->paired ? lat[0] : 0;
    }
    free(lat);
    free(ratio);
    free(rd_ms);
    return rc;
}

/* What --roofline measures, interleaved with the runs so that both sides of
 * each ratio see the same machine (it is shared: load changes by the second). */
typedef struct {
    bool on;
    roof_reader *paired;        /* --paired: the reader alternated with decode steps */
    size_t read_bytes;          /* buffer for the read-bandwidth passes */
    int threads;
    double bw;                  /* best read bandwidth, bytes/s */
    double sgemm_ms, sgemm_flops;   /* best OpenBLAS time on the prefill's shapes */
} roofline_t;

static int measure_roofline(roofline_t *rf, const model_t *m, int P, eng_err *e)
{
    double bw, ms, fl;
    int rc = roof_read_bandwidth(rf->read_bytes, rf->threads, 3, &bw, e);
    if (rc == ENG_OK)
        rc = roof_sgemm_prefill_ms(m, P, rf->threads, 1, &ms, &fl, e);
    if (rc != ENG_OK)
        return rc;
    if (bw > rf->bw)
        rf->bw = bw;
    if (rf->sgemm_ms == 0 || ms < rf->sgemm_ms) {
        rf->sgemm_ms = ms;
        rf->sgemm_flops = fl;
    }
    return ENG_OK;
}

/* The best of `repeat` runs: the fastest prefill, and the decode figures of
 * the run whose decode was fastest (on a shared machine, the least disturbed).
 * With rf on, each run is preceded by a roofline measurement. */
static int run_best(session_t *s, bool cache, const int *prompt, int P, int N, int repeat, roofline_t *rf,
                    bench_run *best, eng_err *e)
{
    for (int i = 0; i < repeat; i++) {
        bench_run r;
        int rc = rf && rf->on ? measure_roofline(rf, session_model(s), P, e) : ENG_OK;
        if (rc == ENG_OK)
            rc = run_one(s, cache, prompt, P, N, rf ? rf->paired : NULL, &r, e);
        if (rc != ENG_OK)
            return rc;
        if (i == 0) {
            *best = r;
            continue;
        }
        double prefill = r.prefill_ms < best->prefill_ms ? r.prefill_ms : best->prefill_ms;
        if (r.decode_ms < best->decode_ms)
            *best = r;
        best->prefill_ms = prefill;
    }
    return ENG_OK;
}

static long peak_rss_bytes(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss * 1024L : -1;
}

int cmd_bench(int argc, char **argv)
{
    const char *cmd = "bench", *dir = NULL, *synth = NULL, *device = NULL, *cache_s = "both", *v;
    eng_dtype dtype = DT_BF16;
    bool json = false, have_dtype = false, roofline = false, observe = false, paired = false;
    int P = 128, N = 32, threads = 0, missing = 0, membw_mb = 0, repeat = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if ((v = ecli_opt(cmd, argc, argv, &i, "--model", &missing))) dir = v;
        else if ((v = ecli_opt(cmd, argc, argv, &i, "--synthetic", &missing))) synth = v;
        else if ((v = ecli_opt(cmd, argc, argv, &i, "--device", &missing))) device = v;
        else if ((v = ecli_opt(cmd, argc, argv, &i, "--cache", &missing))) cache_s = v;
        else if ((v = ecli_opt(cmd, argc, argv, &i, "--dtype", &missing))) {
            if (ecli_parse_dtype(cmd, v, &dtype)) return 2;
            have_dtype = true;
        } else if ((v = ecli_opt(cmd, argc, argv, &i, "--prompt-len", &missing))) {
            if (ecli_parse_int(cmd, "--prompt-len", v, 1, 1 << 20, &P)) return 2;
        } else if ((v = ecli_opt(cmd, argc, argv, &i, "--repeat", &missing))) {
            if (ecli_parse_int(cmd, "--repeat", v, 1, 100, &repeat)) return 2;
        } else if ((v = ecli_opt(cmd, argc, argv, &i, "--gen", &missing))) {
            if (ecli_parse_int(cmd, "--gen", v, 1, 1 << 20, &N)) return 2;
        } else if ((v = ecli_opt(cmd, argc, argv, &i, "--threads", &missing))) {
            if (ecli_parse_int(cmd, "--threads", v, 1, 256, &threads)) return 2;
        } else if ((v = ecli_opt(cmd, argc, argv, &i, "--membw-mb", &missing))) {
            if (ecli_parse_int(cmd, "--membw-mb", v, 1, 1 << 16, &membw_mb)) return 2;
        } else if (strcmp(argv[i], "--json") == 0) json = true;
        else if (strcmp(argv[i], "--roofline") == 0) roofline = true;
        else if (strcmp(argv[i], "--paired") == 0) paired = true;
        else if (strcmp(argv[i], "--observe") == 0) observe = true;
        else if (!missing) {
            fprintf(stderr, "attnscope %s: unknown option '%s' (see attnscope bench --help)\n", cmd, argv[i]);
            return 2;
        }
        if (missing) return 2;
    }
    if ((!dir) == (!synth)) {
        fprintf(stderr, "attnscope %s: needs one of --model DIR or --synthetic NAME (see --help)\n", cmd);
        return 2;
    }
    if (have_dtype && !synth) {
        fprintf(stderr, "attnscope %s: --dtype applies to --synthetic models only\n", cmd);
        return 2;
    }
    bool want_on = strcmp(cache_s, "on") == 0 || strcmp(cache_s, "both") == 0;
    bool want_off = strcmp(cache_s, "off") == 0 || strcmp(cache_s, "both") == 0;
    if (!want_on && !want_off) {
        fprintf(stderr, "attnscope %s: --cache wants on, off or both, not '%s'\n", cmd, cache_s);
        return 2;
    }
    if (ecli_check_device(cmd, device))
        return 2;

    model_t *m = NULL;
    session_t *s = NULL;
    int *prompt = NULL;
    eng_err e = {{0}};
    int code = ecli_open_model(cmd, dir, synth, dtype, &m), rc = ENG_OK;
    if (code)
        return code;
    const config_t *c = &m->cfg;
    rc = session_new(&s, m, P + N, threads, &e);
    if (rc == ENG_OK && device)
        rc = session_set_device(s, device, threads, &e);
    if (rc == ENG_OK)
        session_set_observe(s, observe);
    prompt = malloc((size_t)P * sizeof(int));
    if (rc == ENG_OK && !prompt)
        rc = eng_fail(&e, ENG_ENOMEM, "bench: out of memory");
    if (rc == ENG_OK) {
        uint64_t st = 0x9E3779B97F4A7C15ULL;   /* a fixed pseudo-random prompt */
        for (int i = 0; i < P; i++) {
            st = st * 6364136223846793005ULL + 1442695040888963407ULL;
            prompt[i] = (int)((st >> 33) % (uint64_t)c->vocab_size);
        }
    }
    bench_run runs[2];
    int n_runs = 0;
    roofline_t rf = {.on = roofline};
    if (rc == ENG_OK) {
        rf.threads = session_threads(s);
        /* Default buffer: the decode working set, what one step reads. */
        rf.read_bytes = membw_mb ? (size_t)membw_mb << 20 : session_decode_weight_bytes(s) + session_kv_bytes_max(s);
        membw_mb = (int)((rf.read_bytes + (1u << 20) - 1) >> 20);
        if (paired && want_on)
            rc = roof_reader_new(&rf.paired, rf.read_bytes, rf.threads, &e);
    }
    /* The roofline is measured around the cache-on runs (or the off ones if
     * only those run). */
    if (rc == ENG_OK && want_on && (rc = run_best(s, true, prompt, P, N, repeat, &rf, &runs[n_runs], &e)) == ENG_OK)
        n_runs++;
    if (rc == ENG_OK && want_off &&
        (rc = run_best(s, false, prompt, P, N, repeat, want_on ? NULL : &rf, &runs[n_runs], &e)) == ENG_OK)
        n_runs++;
    if (rc == ENG_OK && roofline)
        rc = measure_roofline(&rf, m, P, &e);   /* and once after */
    if (rc != ENG_OK) {
        fprintf(stderr, "attnscope %s: %s\n", cmd, e.msg);
        code = ecli_exit_code(rc);
        goto done;
    }

    int nt = session_threads(s);
    size_t wbytes = session_decode_weight_bytes(s);
    long rss = peak_rss_bytes();
    double bw = rf.bw, sg_ms = rf.sgemm_ms, sg_flops = rf.sgemm_flops;
    eng_dtype dt = synth ? dtype : m->w.embed.dtype;
    const char *dname = dt == DT_BF16 ? "bf16" : dt == DT_F16 ? "f16" : "f32";   /* as --dtype spells them */

    if (json) {
        printf("{\"model\": \"%s\", \"device\": \"%s\", \"dtype\": \"%s\", \"threads\": %d, "
               "\"prompt_len\": %d, \"gen\": %d, \"repeat\": %d, \"observe\": %s, \"weights_bytes\": %zu, \"weights_total_bytes\": %zu, "
               "\"activation_bytes\": %zu, \"kv_bytes_max\": %zu, \"peak_rss_bytes\": %ld, \"runs\": [",
               m->name, session_device(s), dname, nt, P, N, repeat, observe ? "true" : "false", wbytes, m->weights_bytes, session_run_bytes(s),
               session_kv_bytes_max(s), rss);
        for (int i = 0; i < n_runs; i++) {
            bench_run *r = &runs[i];
            printf("%s{\"cache\": \"%s\", \"prefill_ms\": %.3f, \"prefill_tok_s\": %.2f, \"decode_ms\": %.3f, "
                   "\"decode_tok_s\": %.3f, \"decode_ms_p50\": %.3f, \"decode_ms_p90\": %.3f, "
                   "\"decode_ms_p99\": %.3f, \"decode_ms_min\": %.3f, \"kv_bytes\": %zu",
                   i ? ", " : "", r->cache ? "on" : "off", r->prefill_ms, P / (r->prefill_ms / 1000.0),
                   r->decode_ms, N / (r->decode_ms / 1000.0), r->p50, r->p90, r->p99, r->p0, r->kv_bytes);
            if (r->paired)
                printf(", \"paired_ratio_p25\": %.4f, \"paired_ratio_p50\": %.4f, \"paired_ratio_p75\": %.4f, "
                       "\"paired_read_ms_min\": %.3f", r->pair_p25, r->pair_p50, r->pair_p75, r->pair_read_min);
            printf("}");
        }
        printf("]");
        if (roofline)
            printf(", \"read_bytes_s\": %.0f, \"sgemm_prefill_ms\": %.3f, \"sgemm_prefill_flops\": %.0f",
                   bw, sg_ms, sg_flops);
        printf("}\n");
    } else {
        printf("model %s (%s%s), %s, %d threads, prompt %d tokens, %d generated%s", m->name,
               synth ? "synthetic, " : "", dname, session_device(s), nt, P, N, observe ? ", observer on" : "");
        if (repeat > 1)
            printf(", best of %d runs", repeat);
        printf("\n");
        printf("weights read per token %.1f MB; KV cache %.1f MB at %d tokens; peak RSS %.1f MB\n\n",
               wbytes / 1e6, session_kv_bytes_max(s) / 1e6, P + N, rss / 1e6);
        printf("cache | prefill s | prefill tok/s | decode s | decode tok/s | ms/tok p50 |   p90 | speedup\n");
        printf("------+-----------+---------------+----------+--------------+------------+-------+--------\n");
        double off_tps = 0;
        for (int i = 0; i < n_runs; i++)
            if (!runs[i].cache)
                off_tps = N / (runs[i].decode_ms / 1000.0);
        for (int i = 0; i < n_runs; i++) {
            bench_run *r = &runs[i];
            double tps = N / (r->decode_ms / 1000.0);
            char sp[32] = "";
            if (off_tps > 0)
                snprintf(sp, sizeof sp, "%.2fx", tps / off_tps);
            printf("%-5s | %9.3f | %13.1f | %8.3f | %12.2f | %10.2f | %5.2f | %7s\n", r->cache ? "on" : "off",
                   r->prefill_ms / 1000.0, P / (r->prefill_ms / 1000.0), r->decode_ms / 1000.0, tps, r->p50,
                   r->p90, sp);
        }
        if (roofline) {
            printf("\nread bandwidth %.2f GB/s (best of %d passes over %d MB, %d threads, taken between the runs)\n",
                   bw / 1e9, 3 * (repeat + 1), membw_mb, nt);
            for (int i = 0; i < n_runs; i++)
                if (runs[i].cache) {
                    double tps = N / (runs[i].decode_ms / 1000.0), med = 1000.0 / runs[i].p50;
                    double fast = 1000.0 / runs[i].p0;
                    double roof = bw / (double)(wbytes + session_kv_bytes(s));
                    printf("decode roofline %.1f tok/s (bandwidth / (weights + KV) bytes); reached %.2f tok/s "
                           "= %.0f%% (mean), %.2f = %.0f%% (median step), %.2f = %.0f%% (fastest step)\n",
                           roof, tps, 100.0 * tps / roof, med, 100.0 * med / roof, fast, 100.0 * fast / roof);
                }
        }
        for (int i = 0; i < n_runs; i++)
            if (runs[i].paired)
                printf("\npaired with a read pass after each step (%d threads, %d pairs, bytes of each step: weights + KV "
                       "in use): read/step %.0f%% (median pair; quartiles %.0f-%.0f%%); fastest step %.2f ms vs "
                       "fastest read %.2f ms = %.0f%%\n",
                       nt, N, 100.0 * runs[i].pair_p50, 100.0 * runs[i].pair_p25, 100.0 * runs[i].pair_p75,
                       runs[i].pair_step_min,
                       runs[i].pair_read_min, 100.0 * runs[i].pair_read_min / runs[i].pair_step_min);
        if (roofline) {
            printf("OpenBLAS sgemm on this prefill's shapes: %.1f ms (%.1f GFLOP/s); prefill took %.1f ms = %.0f%% of its rate\n",
                   sg_ms, sg_flops / sg_ms / 1e6, runs[0].prefill_ms, 100.0 * sg_ms / runs[0].prefill_ms);
        }
    }
done:
    roof_reader_free(rf.paired);
    free(prompt);
    session_free(s);
    model_close(m);
    return code;
}
