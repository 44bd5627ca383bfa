/* plain.c - the plain REPL (GNU readline, no ncurses: for pipes, scripts and
 * screen readers) and the options, model lookup and timing lines it shares
 * with `attnscope generate`. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <readline/readline.h>
#include <readline/history.h>

#include "plain.h"
#include "slash.h"

/* ---- common options ---------------------------------------------------------- */

void cli_common_default(cli_common *o)
{
    memset(o, 0, sizeof *o);
    conv_opts_default(&o->conv);
}

/* "attnscope generate" or, for the REPL (cmd ""), "attnscope". */
static const char *who(const char *cmd)
{
    static char buf[64];
    if (cmd && strcmp(cmd, "attnscope") == 0)
        cmd = "";
    snprintf(buf, sizeof buf, "attnscope%s%s", cmd && *cmd ? " " : "", cmd ? cmd : "");
    return buf;
}

/* Matches "--name" or "--name=value"; sets *val to the inline value or NULL. */
static bool opt_is(const char *arg, const char *name, const char **val)
{
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0)
        return false;
    if (arg[n] == '\0') {
        *val = NULL;
        return true;
    }
    if (arg[n] == '=') {
        *val = arg + n + 1;
        return true;
    }
    return false;
}

static const char *opt_value(const char *cmd, const char *name, int argc, char **argv, int *i,
                             const char *inline_val)
{
    if (inline_val)
        return inline_val;
    if (*i + 1 >= argc) {
        fprintf(stderr, "%s: %s needs a value (see --help)\n", who(cmd), name);
        return NULL;
    }
    return argv[++*i];
}

int cli_common_option(const char *cmd, int argc, char **argv, int *i, cli_common *o)
{
    static const char *const sampling[] = {"temp", "top-k", "top-p", "min-p", "repeat-penalty", "seed"};
    const char *arg = argv[*i], *iv = NULL, *v;
    char msg[512];
    long l;

    for (size_t k = 0; k < sizeof sampling / sizeof sampling[0]; k++) {
        char flag[32];
        snprintf(flag, sizeof flag, "--%s", sampling[k]);
        if (!opt_is(arg, flag, &iv))
            continue;
        if (!(v = opt_value(cmd, flag, argc, argv, i, iv)))
            return -1;
        if (slash_set_sampling(&o->conv.sampling, sampling[k], v, "--", msg, sizeof msg)) {
            fprintf(stderr, "%s: %s\n", who(cmd), msg);
            return -1;
        }
        return 1;
    }
    if (opt_is(arg, "--model", &iv) || opt_is(arg, "-m", &iv)) {
        if (!(v = opt_value(cmd, "--model", argc, argv, i, iv)))
            return -1;
        o->model_dir = v;
        return 1;
    }
    if (opt_is(arg, "--system", &iv)) {
        if (!(v = opt_value(cmd, "--system", argc, argv, i, iv)))
            return -1;
        o->system = v;
        return 1;
    }
    if (opt_is(arg, "--device", &iv)) {
        if (!(v = opt_value(cmd, "--device", argc, argv, i, iv)))
            return -1;
        if (strcmp(v, "cpu") && strcmp(v, "cuda")) {
            fprintf(stderr, "%s: --device must be cpu or cuda, got '%s'\n", who(cmd), v);
            return -1;
        }
        o->device = v;
        return 1;
    }
    if (opt_is(arg, "-n", &iv) || opt_is(arg, "--n-predict", &iv)) {
        if (!(v = opt_value(cmd, "-n", argc, argv, i, iv)))
            return -1;
        if (slash_parse_int(v, 1, INT_MAX, &l)) {
            fprintf(stderr, "%s: -n must be a whole number >= 1 (tokens per reply), got '%s'\n", who(cmd), v);
            return -1;
        }
        o->conv.max_new = (int)l;
        return 1;
    }
    if (opt_is(arg, "--ctx", &iv)) {
        if (!(v = opt_value(cmd, "--ctx", argc, argv, i, iv)))
            return -1;
        if (slash_parse_int(v, 2, 1 << 20, &l)) {
            fprintf(stderr, "%s: --ctx must be a whole number >= 2 (context tokens), got '%s'\n", who(cmd), v);
            return -1;
        }
        o->conv.max_seq = (int)l;
        return 1;
    }
    if (opt_is(arg, "--threads", &iv) || opt_is(arg, "-t", &iv)) {
        if (!(v = opt_value(cmd, "--threads", argc, argv, i, iv)))
            return -1;
        if (slash_parse_int(v, 1, 1024, &l)) {
            fprintf(stderr, "%s: --threads must be a whole number from 1 to 1024, got '%s'\n", who(cmd), v);
            return -1;
        }
        o->conv.n_threads = (int)l;
        return 1;
    }
    if (strcmp(arg, "--no-kv-cache") == 0) {
        o->conv.cache = false;
        return 1;
    }
    return 0;
}

int cli_check_device(const char *cmd, const char *device)
{
    if (!device || strcmp(device, "cpu") == 0)
        return 0;
#ifdef ATTNSCOPE_CUDA
    (void)cmd;
    return 0;                   /* whether a GPU is there is the session's to say */
#else
    fprintf(stderr, "%s: --device cuda: this build has no CUDA backend (rebuild with make CUDA=1)\n", who(cmd));
    return -1;
#endif
}

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int cli_models_dir(char *out, size_t cap)
{
    const char *env = getenv("ATTNSCOPE_MODELS");
    if (env && *env) {
        snprintf(out, cap, "%s", env);
        return is_dir(out) ? 0 : -1;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        snprintf(out, cap, "models");
        return is_dir(out) ? 0 : -1;
    }
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    snprintf(out, cap, "%s/../models", exe);
    char real[PATH_MAX];
    if (realpath(out, real))
        snprintf(out, cap, "%s", real);
    return is_dir(out) ? 0 : -1;
}

int cli_resolve_model(const char *cmd, const cli_common *o, char *out, size_t cap)
{
    if (o->model_dir) {
        if (!is_dir(o->model_dir)) {
            fprintf(stderr, "%s: %s: no such model folder\n", who(cmd), o->model_dir);
            return -1;
        }
        snprintf(out, cap, "%s", o->model_dir);
        return 0;
    }
    char models[PATH_MAX];
    cli_models_dir(models, sizeof models);
    snprintf(out, cap, "%s/chat", models);
    if (!is_dir(out)) {
        fprintf(stderr, "%s: the bundled model %s is missing; give --model DIR or set ATTNSCOPE_MODELS\n",
                who(cmd), out);
        return -1;
    }
    return 0;
}

int cli_open_conv(const char *cmd, const char *dir, const cli_common *o, conv_t **out)
{
    eng_err err;
    conv_opts co = o->conv;
    co.device = o->device;
    int rc = conv_open(out, dir, &co, &err);
    if (rc == ENG_EDEVICE && !(cmd && *cmd && strcmp(cmd, "attnscope") != 0)) {
        /* The REPL falls back to the CPU and says so; generate fails (exit 1). */
        fprintf(stderr, "%s: --device %s: %s; using the cpu\n", who(cmd), co.device, err.msg);
        co.device = "cpu";
        rc = conv_open(out, dir, &co, &err);
    }
    if (rc != ENG_OK) {
        fprintf(stderr, "%s: %s\n", who(cmd), err.msg);
        return rc == ENG_EINPUT || rc == ENG_EIO ? 2 : 1;
    }
    if (o->system && *o->system && (rc = conv_set_system(*out, o->system, &err)) != ENG_OK) {
        fprintf(stderr, "%s: --system: %s\n", who(cmd), err.msg);
        conv_close(*out);
        *out = NULL;
        return 1;
    }
    return 0;
}

/* ---- timing lines ------------------------------------------------------------- */

static double per_s(double n, double ms) { return ms > 0 ? n * 1000.0 / ms : 0.0; }

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Percentile q of the inter-token latencies (tokens after the first). */
static double itl_percentile(const conv_t *c, double q)
{
    int n;
    const double *ms = conv_token_ms(c, &n);
    if (n < 2)
        return 0.0;
    double *s = malloc((size_t)(n - 1) * sizeof *s);
    if (!s)
        return 0.0;
    memcpy(s, ms + 1, (size_t)(n - 1) * sizeof *s);
    qsort(s, (size_t)(n - 1), sizeof *s, cmp_double);
    int k = (int)(q * (n - 2) + 0.5);
    double r = s[k];
    free(s);
    return r;
}

static const char *stop_text(const conv_t *c, const conv_timings *t)
{
    switch (t->stop) {
    case CONV_STOP_EOS: return "end of turn";
    case CONV_STOP_LIMIT: return "-n limit";
    case CONV_STOP_CONTEXT: return "context full";
    case CONV_STOP_USER: return "stopped";
    default: (void)c; return "running";
    }
}

void plain_print_timings(FILE *f, const conv_t *c)
{
    const conv_timings *t = conv_last_timings(c);
    fprintf(f, "prompt eval time = %10.2f ms / %5d tokens (%8.2f ms per token, %8.2f tokens per second)"
               " [%d prompt tokens, %d from the cache]\n",
            t->prefill_ms, t->prefill_tokens, t->prefill_tokens ? t->prefill_ms / t->prefill_tokens : 0.0,
            per_s(t->prefill_tokens, t->prefill_ms), t->prompt_tokens, t->prompt_tokens - t->prefill_tokens);
    fprintf(f, "       eval time = %10.2f ms / %5d runs   (%8.2f ms per token, %8.2f tokens per second)\n",
            t->decode_ms, t->decode_evals, t->decode_evals ? t->decode_ms / t->decode_evals : 0.0,
            per_s(t->decode_evals, t->decode_ms));
    fprintf(f, "time to first token = %8.2f ms; inter-token latency p50 %.2f ms, p90 %.2f ms, p99 %.2f ms\n",
            t->ttft_ms, itl_percentile(c, 0.5), itl_percentile(c, 0.9), itl_percentile(c, 0.99));
    fprintf(f, "      total time = %10.2f ms / %5d tokens generated; cache %s; %s; stop: %s\n",
            t->total_ms, t->gen_tokens, t->cache ? "on" : "off",
            conv_device(c), stop_text(c, t));
}

void plain_print_summary(FILE *f, const conv_t *c)
{
    const conv_timings *t = conv_last_timings(c);
    fprintf(f, "[ prompt: %d tok (%d new) %.1f t/s | generation: %d tok %.1f t/s | ttft %.1f ms | cache %s ]\n",
            t->prompt_tokens, t->prefill_tokens, per_s(t->prefill_tokens, t->prefill_ms), t->gen_tokens,
            per_s(t->decode_evals, t->decode_ms), t->ttft_ms, t->cache ? "on" : "off");
}

/* ---- the REPL --------------------------------------------------------------------- */

static volatile sig_atomic_t interrupted;
static char hist[PATH_MAX];    /* the history file, "" when there is none */

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

typedef struct {
    bool interactive;          /* stdin and stdout are terminals */
} plain_state;

static void plain_say(void *ud, bool error, const char *text)
{
    plain_state *st = ud;
    FILE *f = error || !st->interactive ? stderr : stdout;
    fprintf(f, "%s\n", text);
    fflush(f);
}

int plain_stream_reply(conv_t *c, volatile sig_atomic_t *stop, eng_err *err)
{
    conv_token tok;
    bool nl = true;
    int rc = ENG_OK;
    while (conv_generating(c)) {
        if (*stop) {
            conv_stop_reply(c);
            break;
        }
        rc = conv_step(c, -1, &tok, err);
        if (rc != ENG_OK)
            break;
        if (tok.len) {
            fwrite(tok.text, 1, tok.len, stdout);
            fflush(stdout);
            nl = tok.text[tok.len - 1] == '\n';
        }
    }
    if (!nl)
        fputc('\n', stdout);
    fflush(stdout);
    return rc;
}

/* Drives conv_step until the reply ends or Ctrl-C; streams to stdout. */
static int run_reply(conv_t *c)
{
    eng_err err;
    interrupted = 0;
    int rc = plain_stream_reply(c, &interrupted, &err);
    if (rc != ENG_OK)
        fprintf(stderr, "error: %s\n", err.msg);
    const conv_timings *t = conv_last_timings(c);
    if (t->stop == CONV_STOP_USER)
        fprintf(stderr, "[stopped]\n");
    else if (t->stop == CONV_STOP_CONTEXT || t->stop == CONV_STOP_LIMIT)
        fprintf(stderr, "[%s]\n", conv_stop_message(c));
    plain_print_summary(stderr, c);
    interrupted = 0;
    return rc;
}

/* Ctrl-C at the prompt: readline hands the signal on to on_sigint and then
 * calls this hook; the half-typed line is dropped as a shell does, but kept
 * in the history (Up brings it back) so that nothing typed is lost. */
static int on_readline_signal(void)
{
    if (interrupted) {
        interrupted = 0;
        char *typed = rl_line_buffer && rl_line_buffer[0] ? strdup(rl_line_buffer) : NULL;
        rl_replace_line("", 1);
        if (typed) {
            add_history(typed);
            history_set_pos(history_length);
            if (hist[0])
                append_history(1, hist);
            free(typed);
        }
        rl_crlf();
        rl_on_new_line();
        rl_redisplay();
    }
    return 0;
}

static char *completion_gen(const char *text, int state)
{
    const char *s = slash_complete(text, state);
    return s ? strdup(s) : NULL;
}

static char **completion(const char *text, int start, int end)
{
    (void)end;
    rl_attempted_completion_over = 1;
    if (start != 0 || text[0] != '/')
        return NULL;
    return rl_completion_matches(text, completion_gen);
}

/* Reads one line: readline (history, editing) on a terminal, getline otherwise.
 * Returns a malloc'd line without the newline, or NULL at end of input. */
static char *read_one(bool interactive, const char *prompt)
{
    if (interactive)
        return readline(prompt);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0) {
        free(line);
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    return line;
}

/* One message: a line ending in a backslash continues on the next line (the
 * backslash becomes a newline), as in the TUI. NULL at end of input. */
static char *read_line(bool interactive)
{
    char *line = read_one(interactive, "> ");
    while (line) {
        size_t n = strlen(line);
        if (n == 0 || line[n - 1] != '\\')
            return line;
        char *more = read_one(interactive, "... ");
        if (!more) {
            line[n - 1] = '\0';
            return line;
        }
        char *joined = malloc(n + strlen(more) + 1);
        if (!joined) {
            free(more);
            return line;
        }
        memcpy(joined, line, n - 1);
        joined[n - 1] = '\n';
        strcpy(joined + n, more);
        free(line);
        free(more);
        line = joined;
    }
    return NULL;
}

int plain_run(const char *dir, const cli_common *o, const char *models_dir, const char *history_path)
{
    conv_t *c = NULL;
    int rc = cli_open_conv("", dir, o, &c);
    if (rc)
        return rc;
    plain_state st = {isatty(0) && isatty(1)};
    slash_ctx ctx = {0};
    ctx.conv = c;
    ctx.models_dir = models_dir;
    ctx.say = plain_say;
    ctx.ud = &st;

    hist[0] = '\0';
    if (history_path)
        snprintf(hist, sizeof hist, "%s", history_path);
    else if (getenv("HOME"))
        snprintf(hist, sizeof hist, "%s/.attnscope_history", getenv("HOME"));
    if (st.interactive) {
        rl_readline_name = "attnscope";
        rl_attempted_completion_function = completion;
        rl_signal_event_hook = on_readline_signal;
        using_history();
        if (hist[0])
            read_history(hist);
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);

    char info[1024];
    snprintf(info, sizeof info, "attnscope: %s (%s), context %d tokens, cache %s, %s. /help lists the commands; Ctrl-D quits.",
             dir, conv_chat(c) ? conv_family(c) : "plain completion", session_max(conv_session(c)),
             conv_cache(c) ? "on" : "off", conv_device(c));
    plain_say(&st, false, info);
    if (conv_warning(c)) {
        snprintf(info, sizeof info, "warning: %s", conv_warning(c));
        plain_say(&st, false, info);
    }
    char *hint = slash_model_hint(dir);
    if (hint) {
        snprintf(info, sizeof info, "suggested prompt: %s", hint);
        plain_say(&st, false, info);
        free(hint);
    }

    int exit_code = 0;
    for (;;) {
        interrupted = 0;
        char *line = read_line(st.interactive);
        if (!line) {
            if (st.interactive)
                fputc('\n', stdout);
            break;
        }
        const char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s) {
            free(line);
            continue;
        }
        if (st.interactive) {
            add_history(line);
            if (hist[0] && append_history(1, hist) != 0)
                write_history(hist);
        }
        if (slash_is_command(s)) {
            slash_result r = slash_exec(&ctx, s);
            free(line);
            if (r == SLASH_QUIT)
                break;
            if (r == SLASH_GENERATE)
                run_reply(ctx.conv);
            continue;
        }
        eng_err err;
        if (conv_begin(ctx.conv, line, &err) != ENG_OK) {
            fprintf(stderr, "error: %s%s\n", err.msg,
                    st.interactive ? " (your message is in the history: Up brings it back)" : "");
            free(line);
            continue;
        }
        free(line);
        run_reply(ctx.conv);
    }
    conv_close(ctx.conv);
    return exit_code;
}
