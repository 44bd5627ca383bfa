/* slash.c - the slash commands of the REPL (plain and TUI): one table, one
 * parser, one validator of sampling settings shared with the command line. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "slash.h"

/* ---- small helpers ------------------------------------------------------- */

static void say(slash_ctx *ctx, bool error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(slash_ctx *ctx, bool error, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (ctx->say)
        ctx->say(ctx->ud, error, buf);
}

static const char *skip_blanks(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* Copies the first word of args into w (cap bytes) and returns the rest. */
static const char *first_word(const char *args, char *w, size_t cap)
{
    args = skip_blanks(args);
    size_t n = 0;
    while (*args && *args != ' ' && *args != '\t') {
        if (n + 1 < cap)
            w[n++] = *args;
        args++;
    }
    if (cap)
        w[n] = '\0';
    return skip_blanks(args);
}

int slash_parse_int(const char *s, long lo, long hi, long *out)
{
    if (!s || !*s || isspace((unsigned char)*s))
        return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    if (!s || !*s || isspace((unsigned char)*s))
        return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

int slash_set_sampling(sampler_params *p, const char *name, const char *value,
                       const char *prefix, char *msg, size_t cap)
{
    double d;
    long l;
    uint64_t u;
    const char *v = value ? value : "";
    if (strcmp(name, "temp") == 0) {
        if (parse_double(v, &d) || d < 0) {
            snprintf(msg, cap, "%stemp must be a number >= 0 (0 = greedy), got '%s'", prefix, v);
            return -1;
        }
        p->temperature = (float)d;
    } else if (strcmp(name, "top-k") == 0) {
        if (slash_parse_int(v, 0, 1L << 30, &l)) {
            snprintf(msg, cap, "%stop-k must be a whole number >= 0 (0 = off), got '%s'", prefix, v);
            return -1;
        }
        p->top_k = (int)l;
    } else if (strcmp(name, "top-p") == 0) {
        if (parse_double(v, &d) || d <= 0 || d > 1) {
            snprintf(msg, cap, "%stop-p must be in (0, 1] (1 = off), got '%s'", prefix, v);
            return -1;
        }
        p->top_p = (float)d;
    } else if (strcmp(name, "min-p") == 0) {
        if (parse_double(v, &d) || d < 0 || d > 1) {
            snprintf(msg, cap, "%smin-p must be in [0, 1] (0 = off), got '%s'", prefix, v);
            return -1;
        }
        p->min_p = (float)d;
    } else if (strcmp(name, "repeat-penalty") == 0) {
        if (parse_double(v, &d) || d <= 0) {
            snprintf(msg, cap, "%srepeat-penalty must be a number > 0 (1 = off), got '%s'", prefix, v);
            return -1;
        }
        p->repeat_penalty = (float)d;
    } else if (strcmp(name, "seed") == 0) {
        if (parse_u64(v, &u)) {
            snprintf(msg, cap, "%sseed must be a whole number >= 0, got '%s'", prefix, v);
            return -1;
        }
        p->seed = u;
    } else {
        snprintf(msg, cap, "unknown sampling setting '%s'", name);
        return -1;
    }
    return 0;
}

/* ---- model folders --------------------------------------------------------- */

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static char *read_small_file(const char *path, size_t max)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max, f) : 0;
    fclose(f);
    if (buf)
        buf[n] = '\0';
    return buf;
}

static char *trimmed_dup(const char *s, size_t n)
{
    while (n && isspace((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    /* A prompt quoted with backquotes in Markdown: drop them. */
    if (n >= 2 && s[0] == '`' && s[n - 1] == '`') {
        s++;
        n -= 2;
    }
    if (!n)
        return NULL;
    char *r = malloc(n + 1);
    if (r) {
        memcpy(r, s, n);
        r[n] = '\0';
    }
    return r;
}

char *slash_model_hint(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/attnscope.json", dir);
    char *text = read_small_file(path, 1 << 16);
    if (text) {
        cJSON *j = cJSON_Parse(text);
        free(text);
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "prompt");
        if (!cJSON_IsString(p))
            p = cJSON_GetObjectItemCaseSensitive(j, "suggested_prompt");
        char *r = cJSON_IsString(p) ? trimmed_dup(p->valuestring, strlen(p->valuestring)) : NULL;
        cJSON_Delete(j);
        if (r)
            return r;
    }
    snprintf(path, sizeof path, "%s/README.md", dir);
    text = read_small_file(path, 1 << 20);
    if (!text)
        return NULL;
    static const char key[] = "suggested prompt:";
    char *r = NULL;
    for (char *line = text; line && *line && !r;) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        const char *l = line;
        while (len && (*l == ' ' || *l == '*' || *l == '-' || *l == '_')) {
            l++;
            len--;
        }
        if (len > sizeof key - 1 && strncasecmp(l, key, sizeof key - 1) == 0) {
            const char *v = l + sizeof key - 1;
            size_t vn = len - (sizeof key - 1);
            while (vn && (*v == '*' || *v == '_' || *v == ' ')) {
                v++;
                vn--;
            }
            r = trimmed_dup(v, vn);
        }
        line = nl ? nl + 1 : NULL;
    }
    free(text);
    return r;
}

static void list_models(const char *models_dir, char *out, size_t cap)
{
    out[0] = '\0';
    DIR *d = models_dir ? opendir(models_dir) : NULL;
    if (!d)
        return;
    size_t used = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s/config.json", models_dir, e->d_name);
        struct stat st;
        if (stat(p, &st) != 0)
            continue;
        int w = snprintf(out + used, cap - used, "%s%s", used ? ", " : "", e->d_name);
        if (w < 0 || (size_t)w >= cap - used)
            break;
        used += (size_t)w;
    }
    closedir(d);
}

int slash_resolve_model(const char *models_dir, const char *arg, char *out, size_t cap,
                        char *msg, size_t msg_cap)
{
    if (!arg || !*arg) {
        snprintf(msg, msg_cap, "usage: /model NAME|DIR");
        return -1;
    }
    if (strchr(arg, '/') || is_dir(arg)) {
        if (!is_dir(arg)) {
            snprintf(msg, msg_cap, "%s: no such model folder", arg);
            return -1;
        }
        snprintf(out, cap, "%s", arg);
        return 0;
    }
    if (models_dir) {
        snprintf(out, cap, "%s/%s", models_dir, arg);
        if (is_dir(out))
            return 0;
    }
    char names[1024];
    list_models(models_dir, names, sizeof names);
    if (names[0])
        snprintf(msg, msg_cap, "no bundled model '%s' (bundled: %s)", arg, names);
    else
        snprintf(msg, msg_cap, "no model folder '%s' (give a path, or set ATTNSCOPE_MODELS)", arg);
    return -1;
}

/* ---- the commands ------------------------------------------------------------ */

static slash_result cmd_help(slash_ctx *ctx, const char *args);

static slash_result set_sampling(slash_ctx *ctx, const char *name, const char *args)
{
    sampler_params p = *conv_sampling(ctx->conv);
    char w[256], msg[512];
    first_word(args, w, sizeof w);
    if (!w[0]) {
        if (strcmp(name, "temp") == 0)
            say(ctx, false, "temp %g", (double)p.temperature);
        else if (strcmp(name, "top-k") == 0)
            say(ctx, false, "top-k %d", p.top_k);
        else if (strcmp(name, "top-p") == 0)
            say(ctx, false, "top-p %g", (double)p.top_p);
        else if (strcmp(name, "min-p") == 0)
            say(ctx, false, "min-p %g", (double)p.min_p);
        else if (strcmp(name, "repeat-penalty") == 0)
            say(ctx, false, "repeat-penalty %g", (double)p.repeat_penalty);
        else
            say(ctx, false, "seed %llu", (unsigned long long)p.seed);
        return SLASH_OK;
    }
    if (slash_set_sampling(&p, name, w, "/", msg, sizeof msg)) {
        say(ctx, true, "%s", msg);
        return SLASH_ERROR;
    }
    eng_err err;
    if (conv_set_sampling(ctx->conv, &p, &err) != ENG_OK) {
        say(ctx, true, "/%s: %s", name, err.msg);
        return SLASH_ERROR;
    }
    say(ctx, false, "%s %s", name, w);
    return SLASH_OK;
}

static slash_result cmd_temp(slash_ctx *ctx, const char *a) { return set_sampling(ctx, "temp", a); }
static slash_result cmd_top_k(slash_ctx *ctx, const char *a) { return set_sampling(ctx, "top-k", a); }
static slash_result cmd_top_p(slash_ctx *ctx, const char *a) { return set_sampling(ctx, "top-p", a); }
static slash_result cmd_min_p(slash_ctx *ctx, const char *a) { return set_sampling(ctx, "min-p", a); }
static slash_result cmd_repeat(slash_ctx *ctx, const char *a) { return set_sampling(ctx, "repeat-penalty", a); }
/* /seed S re-seeds even when S is the current seed: /seed 0 then /regen
 * repeats a reply drawn right after seeding with 0. */
static slash_result cmd_seed(slash_ctx *ctx, const char *a)
{
    slash_result r = set_sampling(ctx, "seed", a);
    if (r == SLASH_OK && *skip_blanks(a))
        sampler_seed(conv_sampler(ctx->conv), conv_sampling(ctx->conv)->seed);
    return r;
}

static slash_result cmd_cache(slash_ctx *ctx, const char *args)
{
    char w[16];
    first_word(args, w, sizeof w);
    if (!w[0]) {
        say(ctx, false, "cache %s", conv_cache(ctx->conv) ? "on" : "off");
        return SLASH_OK;
    }
    if (strcmp(w, "on") && strcmp(w, "off")) {
        say(ctx, true, "usage: /cache on|off");
        return SLASH_ERROR;
    }
    conv_set_cache(ctx->conv, strcmp(w, "on") == 0);
    say(ctx, false, "cache %s (from the next token)", w);
    return SLASH_OK;
}

static slash_result cmd_regen(slash_ctx *ctx, const char *args)
{
    (void)args;
    eng_err err;
    if (conv_regen(ctx->conv, &err) != ENG_OK) {
        say(ctx, true, "/regen: %s", err.msg);
        return SLASH_ERROR;
    }
    return SLASH_GENERATE;
}

static slash_result cmd_reset(slash_ctx *ctx, const char *args)
{
    (void)args;
    conv_reset(ctx->conv);
    say(ctx, false, "conversation cleared (the system message stays)");
    return SLASH_OK;
}

static slash_result cmd_system(slash_ctx *ctx, const char *args)
{
    eng_err err;
    args = skip_blanks(args);
    if (conv_set_system(ctx->conv, args, &err) != ENG_OK) {
        say(ctx, true, "/system: %s", err.msg);
        return SLASH_ERROR;
    }
    say(ctx, false, *args ? "system message set" : "system message removed");
    return SLASH_OK;
}

static slash_result cmd_save(slash_ctx *ctx, const char *args)
{
    char path[4096], w[64];
    const char *rest = first_word(args, path, sizeof path);
    bool force = false;
    if (strcmp(path, "--force") == 0) {      /* /save --force FILE */
        force = true;
        rest = first_word(rest, path, sizeof path);
    }
    first_word(rest, w, sizeof w);
    if (strcmp(w, "--force") == 0) {
        force = true;
        w[0] = '\0';
    }
    if (!path[0] || w[0]) {
        say(ctx, true, "usage: /save FILE [--force]");
        return SLASH_ERROR;
    }
    eng_err err;
    if (conv_save(ctx->conv, path, force, &err) != ENG_OK) {
        say(ctx, true, "/save: %s", err.msg);
        return SLASH_ERROR;
    }
    say(ctx, false, "saved %s", path);
    return SLASH_OK;
}

static slash_result cmd_model(slash_ctx *ctx, const char *args)
{
    char name[1024], dir[4096], msg[1536];
    first_word(args, name, sizeof name);
    if (!name[0]) {
        say(ctx, false, "model %s (%s)", conv_dir(ctx->conv), conv_model(ctx->conv)->name);
        return SLASH_OK;
    }
    if (slash_resolve_model(ctx->models_dir, name, dir, sizeof dir, msg, sizeof msg)) {
        say(ctx, true, "/model: %s", msg);
        return SLASH_ERROR;
    }
    conv_opts o;
    conv_get_opts(ctx->conv, &o);
    o.max_seq = 0;                           /* the new model's own context */
    conv_t *c = NULL;
    eng_err err;
    if (conv_open(&c, dir, &o, &err) != ENG_OK) {
        say(ctx, true, "/model: %s (still on %s)", err.msg, conv_dir(ctx->conv));
        return SLASH_ERROR;
    }
    conv_close(ctx->conv);
    ctx->conv = c;
    say(ctx, false, "model %s loaded (%s)", dir,
        conv_chat(c) ? conv_family(c) : "plain completion");
    if (conv_warning(c))
        say(ctx, false, "warning: %s", conv_warning(c));
    char *hint = slash_model_hint(dir);
    if (hint) {
        say(ctx, false, "suggested prompt: %s", hint);
        free(hint);
    }
    if (ctx->on_model)
        ctx->on_model(ctx);
    return SLASH_OK;
}

static slash_result cmd_device(slash_ctx *ctx, const char *args)
{
    char w[16];
    first_word(args, w, sizeof w);
    session_t *ses = ctx->conv ? conv_session(ctx->conv) : NULL;
    const char *now = ses ? session_device(ses) : "cpu";
    if (!w[0]) {
        say(ctx, false, "device %s", now);
        return SLASH_OK;
    }
    if (strcmp(w, "cpu") && strcmp(w, "cuda")) {
        say(ctx, true, "usage: /device cpu|cuda");
        return SLASH_ERROR;
    }
#ifndef ATTNSCOPE_CUDA
    if (strcmp(w, "cuda") == 0) {
        say(ctx, true, "/device cuda: this build has no CUDA backend (rebuild with make CUDA=1); staying on cpu");
        return SLASH_ERROR;
    }
#endif
    if (strcmp(w, now) == 0) {
        say(ctx, false, "device %s", now);
        return SLASH_OK;
    }
    if (!ses) {
        say(ctx, true, "/device %s: no model is open; staying on %s", w, now);
        return SLASH_ERROR;
    }
    eng_err err = {{0}};
    double t0 = eng_now_ms();
    conv_opts o;
    conv_get_opts(ctx->conv, &o);
    if (session_set_device(ses, w, o.n_threads, &err) != ENG_OK) {
        say(ctx, true, "/device %s: %s; staying on %s", w, err.msg, now);
        return SLASH_ERROR;
    }
    say(ctx, false, "device %s (switched in %.0f ms, KV cache of %d tokens rebuilt there; the conversation continues)", w,
        eng_now_ms() - t0, session_len(ses));
    return SLASH_OK;
}

static slash_result tui_hook(slash_ctx *ctx, const char *name, const char *args,
                             slash_result (*hook)(slash_ctx *, const char *))
{
    if (!ctx->tui || !hook) {
        say(ctx, true, "/%s works in the TUI only (run attnscope without --plain in a terminal)", name);
        return SLASH_ERROR;
    }
    return hook(ctx, skip_blanks(args));
}

static slash_result cmd_step(slash_ctx *ctx, const char *a) { return tui_hook(ctx, "step", a, ctx->step); }
static slash_result cmd_layer(slash_ctx *ctx, const char *a) { return tui_hook(ctx, "layer", a, ctx->layer); }
static slash_result cmd_head(slash_ctx *ctx, const char *a) { return tui_hook(ctx, "head", a, ctx->head); }
static slash_result cmd_compare(slash_ctx *ctx, const char *a) { return tui_hook(ctx, "compare", a, ctx->compare); }

static slash_result cmd_quit(slash_ctx *ctx, const char *args)
{
    (void)ctx;
    (void)args;
    return SLASH_QUIT;
}

static const slash_cmd table[] = {
    {"help", "/help [COMMAND]", "list the commands, or explain one", cmd_help, false, true},
    {"cache", "/cache [on|off]", "switch the KV cache (from the next token)", cmd_cache, false, true},
    {"temp", "/temp [T]", "temperature, >= 0 (0 = greedy); default 0.7", cmd_temp, false, true},
    {"top-k", "/top-k [K]", "keep the K most likely tokens, >= 0 (0 = off); default 50", cmd_top_k, false, true},
    {"top-p", "/top-p [P]", "nucleus mass in (0, 1] (1 = off); default 0.9", cmd_top_p, false, true},
    {"min-p", "/min-p [P]", "drop tokens below P x the top probability, [0, 1]; default 0", cmd_min_p, false, true},
    {"repeat-penalty", "/repeat-penalty [R]", "repetition penalty, > 0 (1 = off); default 1.1", cmd_repeat, false, true},
    {"seed", "/seed [S]", "re-seed the sampler", cmd_seed, false, true},
    {"regen", "/regen", "drop the last reply and generate it again (no re-prefill)", cmd_regen, false, false},
    {"reset", "/reset", "forget the conversation (the system message stays)", cmd_reset, false, false},
    {"system", "/system [TEXT]", "set the system message (no TEXT removes it)", cmd_system, false, false},
    {"save", "/save FILE [--force]", "write the conversation, settings and timings as JSON", cmd_save, false, false},
    {"model", "/model [NAME|DIR]", "switch to a bundled model (models/NAME) or a folder", cmd_model, false, false},
    {"device", "/device [cpu|cuda]", "compute device", cmd_device, false, false},
    {"step", "/step [on|off]", "step mode: one token per key press (TUI)", cmd_step, true, true},
    {"layer", "/layer N", "show layer N in the attention pane (TUI)", cmd_layer, true, true},
    {"head", "/head N|avg", "show head N, or all heads averaged (TUI)", cmd_head, true, true},
    {"compare", "/compare", "regenerate the last reply with the cache on and off (TUI)", cmd_compare, true, false},
    {"quit", "/quit", "quit (Ctrl-D too)", cmd_quit, false, true},
};

#define N_TABLE ((int)(sizeof table / sizeof table[0]))

static slash_result cmd_help(slash_ctx *ctx, const char *args)
{
    char w[64];
    first_word(args, w, sizeof w);
    if (w[0]) {
        const slash_cmd *c = slash_find(w[0] == '/' ? w + 1 : w);
        if (!c) {
            say(ctx, true, "unknown command /%s; /help lists them", w[0] == '/' ? w + 1 : w);
            return SLASH_ERROR;
        }
        say(ctx, false, "%-22s %s", c->usage, c->help);
        return SLASH_OK;
    }
    if (ctx->tui && ctx->help)
        return ctx->help(ctx, "");
    for (int i = 0; i < N_TABLE; i++)
        if (ctx->tui || !table[i].tui_only)
            say(ctx, false, "%-22s %s", table[i].usage, table[i].help);
    if (!ctx->tui)
        say(ctx, false, "Ctrl-C stops a reply, Ctrl-D quits. The TUI adds /step, /layer, /head, /compare.");
    return SLASH_OK;
}

/* ---- dispatch ----------------------------------------------------------------- */

const slash_cmd *slash_table(int *n)
{
    if (n)
        *n = N_TABLE;
    return table;
}

const slash_cmd *slash_find(const char *name)
{
    for (int i = 0; i < N_TABLE; i++)
        if (strcmp(table[i].name, name) == 0)
            return &table[i];
    return NULL;
}

bool slash_is_command(const char *line)
{
    return line && *skip_blanks(line) == '/';
}

slash_result slash_exec(slash_ctx *ctx, const char *line)
{
    const char *s = skip_blanks(line);
    if (*s == '/')
        s++;
    char name[64];
    size_t n = 0;
    while (s[n] && s[n] != ' ' && s[n] != '\t')
        n++;
    if (n == 0 || n >= sizeof name) {
        say(ctx, true, "unknown command /%.*s; /help lists them", (int)(n > 40 ? 40 : n), s);
        return SLASH_ERROR;
    }
    memcpy(name, s, n);
    name[n] = '\0';
    const slash_cmd *c = slash_find(name);
    if (!c) {
        say(ctx, true, "unknown command /%s; /help lists them", name);
        return SLASH_ERROR;
    }
    if (!c->live && ctx->conv && conv_generating(ctx->conv)) {
        say(ctx, true, "/%s: wait for the reply to finish (or stop it first)", name);
        return SLASH_ERROR;
    }
    /* Trailing blanks and a newline are not part of the arguments. */
    char *args = strdup(skip_blanks(s + n));
    if (!args) {
        say(ctx, true, "/%s: out of memory", name);
        return SLASH_ERROR;
    }
    size_t al = strlen(args);
    while (al && isspace((unsigned char)args[al - 1]))
        args[--al] = '\0';
    slash_result r = c->fn(ctx, args);
    free(args);
    return r;
}

const char *slash_complete(const char *prefix, int state)
{
    static char buf[64];
    const char *p = prefix && *prefix == '/' ? prefix + 1 : (prefix ? prefix : "");
    size_t pl = strlen(p);
    int seen = 0;
    for (int i = 0; i < N_TABLE; i++) {
        if (strncmp(table[i].name, p, pl) == 0 && seen++ == state) {
            snprintf(buf, sizeof buf, "/%s", table[i].name);
            return buf;
        }
    }
    return NULL;
}
