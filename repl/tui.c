/* tui.c - the ncurses REPL: event loop, keys, slash-command hooks, generation
 * one token per loop iteration (so Esc and redraws interleave with decode),
 * and the attention store behind the heatmaps. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tui.h"
#include "tui_app.h"
#include "tui_input.h"
#include "tui_term.h"
#include "label.h"

#define FRAME_MS 80.0              /* at most one redraw per 80 ms while generating ... */
#define DRAW_SHARE 60.0            /* ... and frames further apart than 60 x the last frame's cost,
                                      so drawing takes under ~1.7% of decode time */
#define ATTN_MAX_BYTES (512u << 20) /* attention history kept for the heatmaps */

void tui_opts_default(tui_opts *o)
{
    memset(o, 0, sizeof *o);
}

int tui_option(int argc, char **argv, int *i, tui_opts *o)
{
    const char *a = argv[*i];
    if (strcmp(a, "--mono") == 0) { o->mono = true; return 1; }
    if (strcmp(a, "--no-mouse") == 0) { o->no_mouse = true; return 1; }
    const char *v = NULL;
    if (strcmp(a, "--theme") == 0) {
        if (*i + 1 >= argc) { fprintf(stderr, "attnscope: --theme needs a value: dark, light or projector\n"); return -1; }
        v = argv[++*i];
    } else if (strncmp(a, "--theme=", 8) == 0) {
        v = a + 8;
    } else {
        return 0;
    }
    if (!viz_theme_named(v)) {
        fprintf(stderr, "attnscope: --theme must be dark, light or projector, got '%s'\n", v);
        return -1;
    }
    o->theme = v;
    return 1;
}

/* ---- chat log ------------------------------------------------------------- */

static tui_msg *msg_add(tui_app *app, tui_msg_kind kind, const char *text)
{
    if (app->n_msgs == app->msgs_cap) {
        int cap = app->msgs_cap ? app->msgs_cap * 2 : 32;
        tui_msg *m = realloc(app->msgs, (size_t)cap * sizeof *m);
        if (!m) return NULL;
        app->msgs = m;
        app->msgs_cap = cap;
    }
    tui_msg *m = &app->msgs[app->n_msgs++];
    memset(m, 0, sizeof *m);
    m->kind = kind;
    size_t n = strlen(text);
    m->cap = n + 64;
    m->text = malloc(m->cap);
    if (!m->text) { app->n_msgs--; return NULL; }
    memcpy(m->text, text, n + 1);
    m->len = n;
    app->dirty = true;
    return m;
}

static void msg_append(tui_msg *m, const char *s, size_t n)
{
    if (m->len + n + 1 > m->cap) {
        size_t cap = (m->len + n + 1) * 2;
        char *t = realloc(m->text, cap);
        if (!t) return;
        m->text = t;
        m->cap = cap;
    }
    memcpy(m->text + m->len, s, n);
    m->len += n;
    m->text[m->len] = '\0';
}

static void msg_set(tui_msg *m, const char *s)
{
    m->len = 0;
    m->text[0] = '\0';
    msg_append(m, s, strlen(s));
}

static void msg_push_id(tui_msg *m, int id)
{
    if (m->n_ids == m->ids_cap) {
        int cap = m->ids_cap ? m->ids_cap * 2 : 64;
        int *p = realloc(m->ids, (size_t)cap * sizeof *p);
        if (!p) return;
        m->ids = p;
        m->ids_cap = cap;
    }
    m->ids[m->n_ids++] = id;
}

static void msgs_clear(tui_app *app)
{
    for (int i = 0; i < app->n_msgs; i++) {
        free(app->msgs[i].text);
        free(app->msgs[i].ids);
    }
    app->n_msgs = 0;
    app->reply_msg = -1;
    app->scroll = 0;
    app->dirty = true;
}

static void say_cb(void *ud, bool error, const char *text)
{
    msg_add(ud, error ? MSG_ERROR : MSG_INFO, text);
}

static void sayf(tui_app *app, bool error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void sayf(tui_app *app, bool error, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    say_cb(app, error, buf);
}

/* ---- attention store ------------------------------------------------------ */

static size_t tri_off(int n_heads, int q) { return (size_t)n_heads * (size_t)q * (size_t)(q + 1) / 2; }

float tui_attn_get(const tui_attn *a, int l, int h, int q, int k)
{
    if (q >= a->n || k > q || l < 0 || l >= a->n_layers) return 0.0f;
    const float *row = a->rows[l] + tri_off(a->n_heads, q);
    if (h >= 0) return row[(size_t)h * (q + 1) + k];
    float s = 0.0f;
    for (int i = 0; i < a->n_heads; i++) s += row[(size_t)i * (q + 1) + k];
    return s / (float)a->n_heads;
}

static void attn_free(tui_attn *a)
{
    for (int l = 0; l < a->n_layers && a->rows; l++) free(a->rows[l]);
    free(a->rows);
    memset(a, 0, sizeof *a);
}

static int attn_init(tui_attn *a, const model_t *m)
{
    attn_free(a);
    a->n_layers = m->cfg.n_layers;
    a->n_heads = m->cfg.n_heads;
    a->n_kv_heads = m->cfg.n_kv_heads;
    a->rows = calloc((size_t)a->n_layers, sizeof *a->rows);
    return a->rows ? 0 : -1;
}

static bool attn_reserve(tui_attn *a, int rows)
{
    if (rows <= a->cap) return true;
    int cap = a->cap ? a->cap : 64;
    while (cap < rows) cap *= 2;
    size_t bytes = tri_off(a->n_heads, cap) * sizeof(float);
    if (bytes * (size_t)a->n_layers > ATTN_MAX_BYTES) {
        /* the most rows the cap allows, taken in one step (not one realloc per token) */
        int lo = a->cap, hi = cap;
        while (lo < hi) {
            int mid = lo + (hi - lo + 1) / 2;
            if (tri_off(a->n_heads, mid) * sizeof(float) * (size_t)a->n_layers <= ATTN_MAX_BYTES) lo = mid;
            else hi = mid - 1;
        }
        if (lo < rows) { a->full = true; return false; }
        cap = lo;
        bytes = tri_off(a->n_heads, cap) * sizeof(float);
    }
    for (int l = 0; l < a->n_layers; l++) {
        float *p = realloc(a->rows[l], bytes);
        if (!p) { a->full = true; return false; }
        a->rows[l] = p;
    }
    a->cap = cap;
    return true;
}

/* Copies the rows of the session's last eval into the store. */
static void attn_capture(tui_app *app)
{
    tui_attn *a = &app->attn;
    session_t *s = conv_session(app->conv);
    int len = session_len(s);
    if (len < a->n) a->n = len;
    int q0, nq, nk;
    if (!session_attn(s, 0, &q0, &nq, &nk) || nq <= 0) return;
    int end = q0 + nq;
    if (end <= a->n || end > len) return;
    if (!attn_reserve(a, end)) return;
    for (int q = a->n; q < q0; q++)          /* rows never observed: zeros */
        for (int l = 0; l < a->n_layers; l++)
            memset(a->rows[l] + tri_off(a->n_heads, q), 0, (size_t)a->n_heads * (q + 1) * sizeof(float));
    /* Rows already held are not copied again: with the cache off every eval
     * recomputes the whole triangle, and its old rows are the same up to rounding. */
    int first = a->n > q0 ? a->n : q0;
    for (int l = 0; l < a->n_layers; l++) {
        const float *p = session_attn(s, l, &q0, &nq, &nk);
        if (!p) return;
        for (int i = first - q0; i < nq; i++) {
            int q = q0 + i;
            float *dst = a->rows[l] + tri_off(a->n_heads, q);
            for (int h = 0; h < a->n_heads; h++)
                memcpy(dst + (size_t)h * (q + 1), p + ((size_t)h * nq + i) * nk, (size_t)(q + 1) * sizeof(float));
        }
    }
    a->n = end;
}

/* Labels for the context positions, for the heatmap axes. */
static void labels_update(tui_app *app)
{
    session_t *s = conv_session(app->conv);
    int len = session_len(s);
    const int *ids = session_tokens(s);
    tokenizer_t *tok = conv_tokenizer(app->conv);
    if (len > app->labels_cap) {
        int cap = app->labels_cap ? app->labels_cap : 256;
        while (cap < len) cap *= 2;
        char (*p)[24] = realloc(app->labels, (size_t)cap * sizeof *p);
        if (!p) return;
        app->labels = p;
        app->labels_cap = cap;
        app->n_labels = 0;   /* relabel: the array moved */
    }
    if (app->n_labels > len) app->n_labels = len;
    for (int i = app->n_labels; i < len; i++) {
        const char *raw = tok_id_to_token(tok, ids[i]);
        if (raw) viz_label(raw, app->labels[i], sizeof app->labels[i], 12);
        else tok_label(tok, ids[i], app->labels[i], sizeof app->labels[i], 12);
    }
    app->n_labels = len;
}

static void observe_now(tui_app *app)
{
    double t0 = eng_now_ms();
    attn_capture(app);
    labels_update(app);
    app->capture_ms += eng_now_ms() - t0;
}

/* One line per reply to $ATTNSCOPE_TUI_STATS: what decode cost in the model
 * and on the wall clock, and what the TUI spent drawing and copying. */
static void write_stats(tui_app *app)
{
    const char *path = getenv("ATTNSCOPE_TUI_STATS");
    if (!path || !*path) return;
    FILE *f = fopen(path, "a");
    if (!f) return;
    const conv_timings *t = conv_last_timings(app->conv);
    double wall = app->first_tok_ms > 0 ? eng_now_ms() - app->first_tok_ms : 0;
    fprintf(f, "tokens=%d decode_evals=%d model_decode_ms=%.3f wall_decode_ms=%.3f frames=%d draw_ms=%.3f "
               "capture_ms=%.3f cache=%s depth=%d size=%dx%d\n",
            t->gen_tokens, t->decode_evals, t->decode_ms, wall, app->frames, app->draw_ms,
            app->capture_ms, t->cache ? "on" : "off", (int)app->depth, app->w, app->h);
    fclose(f);
}

/* ---- replies ---------------------------------------------------------------- */

static void stats_copy(tui_run_stats *dst, tui_app *app)
{
    const conv_timings *t = conv_last_timings(app->conv);
    int n;
    const double *ms = conv_token_ms(app->conv, &n);
    dst->valid = true;
    dst->cache = t->cache;
    dst->prefill_ms = t->prefill_ms;
    dst->prefill_tokens = t->prefill_tokens;
    dst->ttft_ms = t->ttft_ms;
    dst->decode_ms = t->decode_ms;
    dst->gen_tokens = t->gen_tokens;
    int m = n > 1 ? n - 1 : 0;
    if (m > dst->cap) {
        float *p = realloc(dst->ms, (size_t)m * sizeof *p);
        if (!p) { dst->n = 0; return; }
        dst->ms = p;
        dst->cap = m;
    }
    for (int i = 0; i < m; i++) dst->ms[i] = (float)ms[i + 1];
    dst->n = m;
}

static void start_reply(tui_app *app, bool replace_last)
{
    app->reply_msg = -1;
    if (replace_last)
        for (int i = app->n_msgs - 1; i >= 0; i--)
            if (app->msgs[i].kind == MSG_MODEL) {
                app->reply_msg = i;
                msg_set(&app->msgs[i], "");
                app->msgs[i].n_ids = 0;
                break;
            }
    if (app->reply_msg < 0) {
        if (!msg_add(app, MSG_MODEL, "")) return;
        app->reply_msg = app->n_msgs - 1;
    }
    app->generating = true;
    app->gen_start_ms = eng_now_ms();
    app->gen_tokens = 0;
    app->cand_sel = 0;
    app->cur_q = app->cur_k = -1;
    app->scroll = 0;
    app->first_tok_ms = 0;
    app->draw_ms = app->capture_ms = 0;
    app->frames = 0;
    observe_now(app);
    app->dirty = true;
}

static int begin_compare_phase(tui_app *app);

static void finish_reply(tui_app *app)
{
    app->generating = false;
    write_stats(app);
    const conv_timings *t = conv_last_timings(app->conv);
    stats_copy(&app->last[t->cache ? 1 : 0], app);
    const char *why = conv_stop_message(app->conv);
    if (why) sayf(app, false, "%s", why);
    if (app->compare_phase == 1) {
        app->compare_phase = 2;
        if (begin_compare_phase(app) == 0) return;
    }
    if (app->compare_phase == 2) {
        app->compare_phase = 0;
        conv_set_cache(app->conv, app->compare_saved_cache);
        const tui_run_stats *on = &app->last[1], *off = &app->last[0];
        double a = on->n ? on->decode_ms / on->n : 0, b = off->n ? off->decode_ms / off->n : 0;
        sayf(app, false, "compare: decode %.2f ms/token with the cache, %.2f without (%.1fx); see the timings pane",
             a, b, a > 0 ? b / a : 0.0);
    }
    app->dirty = true;
}

/* One token of the current reply. */
static void step_once(tui_app *app)
{
    if (!app->generating) return;
    conv_token tok;
    eng_err err = {{0}};
    int rc = conv_step(app->conv, -1, &tok, &err);
    observe_now(app);
    if (rc != ENG_OK) {
        sayf(app, true, "generation stopped: %s", err.msg);
        finish_reply(app);
        return;
    }
    if (app->reply_msg >= 0 && app->reply_msg < app->n_msgs) {
        tui_msg *m = &app->msgs[app->reply_msg];
        if (tok.len) msg_append(m, tok.text, tok.len);
        if (tok.id >= 0 && tok.stop == CONV_STOP_NONE) msg_push_id(m, tok.id);
    }
    if (tok.id >= 0 && app->gen_tokens++ == 0) app->first_tok_ms = eng_now_ms();
    double el = eng_now_ms() - app->gen_start_ms;
    if (el > 0) app->live_tok_s = app->gen_tokens * 1000.0 / el;
    app->cand_sel = 0;
    app->dirty = true;
    if (tok.stop != CONV_STOP_NONE) finish_reply(app);
}

static int begin_compare_phase(tui_app *app)
{
    eng_err err = {{0}};
    conv_set_cache(app->conv, app->compare_phase == 1);
    if (conv_regen(app->conv, &err) != ENG_OK) {
        sayf(app, true, "/compare: %s", err.msg);
        app->compare_phase = 0;
        conv_set_cache(app->conv, app->compare_saved_cache);
        return -1;
    }
    sayf(app, false, "compare: regenerating with the cache %s", app->compare_phase == 1 ? "on" : "off");
    start_reply(app, true);
    return 0;
}

static void stop_reply(tui_app *app)
{
    if (!app->generating) return;
    conv_stop_reply(app->conv);
    app->compare_phase = app->compare_phase ? 2 : 0;
    finish_reply(app);
    sayf(app, false, "stopped");
}

/* ---- slash-command hooks ------------------------------------------------------ */

static tui_app *app_of(slash_ctx *ctx) { return ctx->ud; }

static slash_result hook_step(slash_ctx *ctx, const char *args)
{
    tui_app *app = app_of(ctx);
    if (!*args) app->step_mode = !app->step_mode;
    else if (strcmp(args, "on") == 0) app->step_mode = true;
    else if (strcmp(args, "off") == 0) app->step_mode = false;
    else { sayf(app, true, "usage: /step [on|off]"); return SLASH_ERROR; }
    sayf(app, false, "step mode %s%s", app->step_mode ? "on" : "off",
         app->step_mode ? ": space or n = one token, arrows + Enter pick another candidate" : "");
    app->fold = app->step_mode ? VIZ_PANE_CAND : app->fold;
    return SLASH_OK;
}

static slash_result hook_layer(slash_ctx *ctx, const char *args)
{
    tui_app *app = app_of(ctx);
    long v;
    if (slash_parse_int(args, 0, app->attn.n_layers - 1, &v) != 0) {
        sayf(app, true, "usage: /layer N (0..%d)", app->attn.n_layers - 1);
        return SLASH_ERROR;
    }
    app->layer = (int)v;
    app->dirty = true;
    return SLASH_OK;
}

static slash_result hook_head(slash_ctx *ctx, const char *args)
{
    tui_app *app = app_of(ctx);
    long v;
    if (strcmp(args, "avg") == 0) { app->head = -1; app->dirty = true; return SLASH_OK; }
    if (slash_parse_int(args, 0, app->attn.n_heads - 1, &v) != 0) {
        sayf(app, true, "usage: /head N (0..%d) or /head avg", app->attn.n_heads - 1);
        return SLASH_ERROR;
    }
    app->head = (int)v;
    app->dirty = true;
    return SLASH_OK;
}

static slash_result hook_compare(slash_ctx *ctx, const char *args)
{
    (void)args;
    tui_app *app = app_of(ctx);
    bool have = false;
    for (int i = 0; i < conv_n_messages(app->conv); i++)
        if (conv_message_role(app->conv, i) == CONV_ASSISTANT) have = true;
    if (!have) { sayf(app, true, "/compare: no reply yet; ask something first"); return SLASH_ERROR; }
    app->compare_saved_cache = conv_cache(app->conv);
    app->compare_phase = 1;
    app->fold = VIZ_PANE_TIME;
    return begin_compare_phase(app) == 0 ? SLASH_OK : SLASH_ERROR;
}

static slash_result hook_help(slash_ctx *ctx, const char *args)
{
    (void)args;
    tui_app *app = app_of(ctx);
    app->help = true;
    app->help_scroll = 0;
    app->dirty = true;
    return SLASH_OK;
}

static void hook_model(slash_ctx *ctx)
{
    tui_app *app = app_of(ctx);
    app->conv = ctx->conv;
    attn_init(&app->attn, conv_model(app->conv));
    session_set_observe(conv_session(app->conv), true);
    app->n_labels = 0;
    app->layer = 0;
    app->head = -1;
    for (int i = 0; i < 2; i++) app->last[i].valid = false;
    for (int i = 0; i < app->n_msgs; i++)
        if (app->msgs[i].kind == MSG_USER || app->msgs[i].kind == MSG_MODEL) app->msgs[i].kind = MSG_INFO;
}

/* ---- input lines -------------------------------------------------------------- */

static void tokenize_into(tui_app *app, tui_msg *m)
{
    int *ids = NULL;
    size_t n = 0;
    eng_err err;
    if (tok_encode(conv_tokenizer(app->conv), m->text, m->len, false, &ids, &n, &err) == ENG_OK) {
        for (size_t i = 0; i < n; i++) msg_push_id(m, ids[i]);
    }
    eng_free(ids);
}

static void on_line(char *line, void *ud)
{
    tui_app *app = ud;
    if (!line) {                  /* Ctrl-D on an empty line */
        app->quit = true;
        return;
    }
    if (!*line) { free(line); return; }
    tui_input_remember(line);
    app->scroll = 0;
    if (slash_is_command(line)) {
        const char *s = line;
        while (*s == ' ') s++;
        bool reset = strncmp(s, "/reset", 6) == 0 && (s[6] == '\0' || s[6] == ' ');
        slash_result r = slash_exec(&app->sctx, line);
        if (r == SLASH_QUIT) app->quit = true;
        else if (r == SLASH_GENERATE) start_reply(app, true);
        else if (r == SLASH_OK && reset) {
            msgs_clear(app);
            sayf(app, false, "conversation cleared (the system message stays)");
        }
        /* new sampling settings act on the current step's candidates at once */
        if (r == SLASH_OK && !app->generating) {
            int tkn;
            eng_err err;
            sampler_redo(conv_sampler(app->conv), &tkn, &err);
        } else if (r == SLASH_OK && app->generating && app->step_mode &&
                   (!strncmp(s, "/temp", 5) || !strncmp(s, "/top-", 5) || !strncmp(s, "/min-p", 6) ||
                    !strncmp(s, "/repeat", 7) || !strncmp(s, "/seed", 5))) {
            const char *text;
            eng_err err;
            if (conv_replace_last(app->conv, -1, &text, &err) == ENG_OK && app->reply_msg >= 0) {
                tui_msg *m = &app->msgs[app->reply_msg];
                msg_set(m, text);
                const sampler_report *rep = sampler_last(conv_sampler(app->conv));
                if (m->n_ids > 0 && rep->chosen >= 0) m->ids[m->n_ids - 1] = rep->chosen;
            }
        }
        free(line);
        app->dirty = true;
        return;
    }
    if (app->generating) {
        sayf(app, true, "a reply is being generated: Esc stops it");
        free(line);
        return;
    }
    tui_msg *m = msg_add(app, MSG_USER, line);
    if (m) tokenize_into(app, m);
    eng_err err = {{0}};
    if (conv_begin(app->conv, line, &err) != ENG_OK) {
        sayf(app, true, "%s (your message is in the history: Up brings it back)", err.msg);
        free(line);
        return;
    }
    free(line);
    start_reply(app, false);
    if (app->step_mode) sayf(app, false, "step mode: press space or n for each token");
}

/* ---- keys ------------------------------------------------------------------------ */

static viz_pane next_pane(tui_app *app, int dir)
{
    static const viz_pane order[] = {VIZ_PANE_CHAT, VIZ_PANE_ATTN, VIZ_PANE_CAND, VIZ_PANE_TIME};
    int i = 0;
    for (int j = 0; j < 4; j++) if (order[j] == app->focus) i = j;
    i = (i + dir + 4) % 4;
    return order[i];
}

static void complete_slash(tui_app *app)
{
    int point;
    const char *text = tui_input_text(&point);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s", text);
    const char *first = slash_complete(prefix, 0);
    if (!first) return;
    const char *second = slash_complete(prefix, 1);
    if (!second) {
        char full[80];
        snprintf(full, sizeof full, "%s ", first);
        tui_input_set(full);
    } else {
        /* the common prefix of all matches, and the list in the chat */
        char common[64], list[512] = "";
        snprintf(common, sizeof common, "%s", first);
        for (int i = 0;; i++) {
            const char *m = slash_complete(prefix, i);
            if (!m) break;
            size_t k = 0;
            while (common[k] && m[k] == common[k]) k++;
            common[k] = '\0';
            size_t ll = strlen(list);
            snprintf(list + ll, sizeof list - ll, "%s%s", ll ? "  " : "", m);
        }
        tui_input_set(common);
        sayf(app, false, "%s", list);
    }
    app->dirty = true;
}

static bool step_keys(tui_app *app, int k)
{
    /* step mode with a reply in progress and nothing typed: space/n step,
     * arrows + Enter pick (with text on the line, Enter sends it: /quit works) */
    if (!(app->step_mode && app->generating) || !tui_input_empty()) return false;
    const sampler_report *rep = sampler_last(conv_sampler(app->conv));
    switch (k) {
    case ' ': case 'n':
        step_once(app);
        return true;
    case KEY_UP:
        if (app->cand_sel > 0) app->cand_sel--;
        app->dirty = true;
        return true;
    case KEY_DOWN:
        if (rep && app->cand_sel < rep->n_cands - 1) app->cand_sel++;
        app->dirty = true;
        return true;
    case '\r': case '\n': case KEY_ENTER: {
        if (!rep || rep->chosen < 0 || app->cand_sel >= rep->n_cands) return true;
        int id = rep->cands[app->cand_sel].token;
        const char *text;
        eng_err err;
        if (conv_replace_last(app->conv, id, &text, &err) == ENG_OK) {
            if (app->reply_msg >= 0) {
                tui_msg *m = &app->msgs[app->reply_msg];
                msg_set(m, text);
                if (m->n_ids > 0) m->ids[m->n_ids - 1] = id;
            }
        } else {
            sayf(app, true, "pick: %s", err.msg);
        }
        app->dirty = true;
        return true;
    }
    default:
        return false;
    }
}

/* Keys for the attention pane (and the single-key views) when it has focus. */
static bool view_keys(tui_app *app, int k)
{
    tui_attn *a = &app->attn;
    switch (k) {
    case '[': if (app->layer > 0) app->layer--; break;
    case ']': if (app->layer < a->n_layers - 1) app->layer++; break;
    case '{': app->head = app->head < 0 ? a->n_heads - 1 : app->head - 1; break;
    case '}': app->head = app->head >= a->n_heads - 1 ? -1 : app->head + 1; break;
    case 'a': app->head = -1; break;
    case 'g': app->view = app->view == VIEW_GRID ? VIEW_HEAD : VIEW_GRID; break;
    case 's': hook_step(&app->sctx, ""); break;
    case 't': app->token_view = !app->token_view; break;
    case KEY_LEFT: case KEY_RIGHT: case KEY_UP: case KEY_DOWN: {
        if (app->focus != VIZ_PANE_ATTN) return false;
        int n = a->n;
        if (n <= 0) break;
        int q = app->cur_q < 0 ? n - 1 : app->cur_q;
        int kk = app->cur_k < 0 ? q : app->cur_k;
        if (app->view == VIEW_GRID) {
            if (k == KEY_LEFT) app->head = app->head <= 0 ? a->n_heads - 1 : app->head - 1;
            if (k == KEY_RIGHT) app->head = (app->head + 1) % a->n_heads;
            if (k == KEY_UP && app->layer > 0) app->layer--;
            if (k == KEY_DOWN && app->layer < a->n_layers - 1) app->layer++;
            break;
        }
        if (k == KEY_LEFT && kk > 0) kk--;
        if (k == KEY_RIGHT && kk < q) kk++;
        if (k == KEY_UP && q > 0) { q--; if (kk > q) kk = q; }
        if (k == KEY_DOWN && q < n - 1) q++;
        app->cur_q = q;
        app->cur_k = kk;
        break;
    }
    case '\r': case KEY_ENTER:
        if (app->view == VIEW_GRID) { app->view = VIEW_HEAD; if (app->head < 0) app->head = 0; break; }
        app->cur_q = app->cur_k = -1;   /* back to following the newest token */
        break;
    default:
        return false;
    }
    app->dirty = true;
    return true;
}

static bool inside(viz_rect r, int x, int y)
{
    return x >= r.x && x < r.x + r.w && y >= r.y && y < r.y + r.h;
}

/* A left click focuses the pane under it; on the heatmap it also puts the
 * cursor on the clicked cell (the upper query of a half-block cell). */
static void on_click(tui_app *app, int x, int y)
{
    if (app->help || app->L.too_small) return;
    for (int p = 0; p < VIZ_NPANES; p++)
        if (app->L.visible[p] && inside(app->L.pane[p], x, y)) app->focus = (viz_pane)p;
    if (inside(app->L.input, x, y)) app->focus = VIZ_PANE_CHAT;
    const viz_heat_info *h = &app->heat;
    if (app->focus == VIZ_PANE_ATTN && app->heat_drawn && app->view == VIEW_HEAD && h->nk > 0 &&
        inside(h->map, x, y)) {
        int cw = h->map.w / h->nk;
        if (cw < 1) cw = 1;
        int q = h->q0 + (y - h->map.y) * (h->half ? 2 : 1);
        int kk = h->k0 + (x - h->map.x) / cw;
        if (q >= app->attn.n) q = app->attn.n - 1;
        if (kk > q) kk = q;
        app->cur_q = q;
        app->cur_k = kk;
    }
}

static void on_key(tui_app *app, int k)
{
    app->dirty = true;
    if (k == KEY_RESIZE) { tui_term_touch(); return; }
    if (app->help) {
        if (k == KEY_UP && app->help_scroll > 0) app->help_scroll--;
        else if (k == KEY_DOWN) app->help_scroll++;
        else if (k == KEY_PPAGE) app->help_scroll = app->help_scroll > 10 ? app->help_scroll - 10 : 0;
        else if (k == KEY_NPAGE) app->help_scroll += 10;   /* the draw clamps it */
        else if (k == 27 || k == 'q' || k == KEY_F(1) || k == '?' || k == '\r' || k == KEY_ENTER) app->help = false;
        return;
    }
    if (k == KEY_F(1)) { app->help = true; app->help_scroll = 0; return; }
    if (k == 27) {
        /* Esc stops a reply, or takes focus back to the input line; otherwise
         * Esc + Enter is Alt-Enter (a newline) and Esc + key is readline's Meta-key. */
        if (app->generating) { stop_reply(app); return; }
        if (app->focus != VIZ_PANE_CHAT) { app->focus = VIZ_PANE_CHAT; return; }
        int n = tui_term_key(0);
        if (n == '\r' || n == '\n' || n == KEY_ENTER) { tui_input_insert("\n"); return; }
        if (n != ERR && n < 256) { tui_input_key(27); tui_input_key(n); return; }
        if (n != ERR) on_key(app, n);
        return;
    }
    if (k == 3) {                           /* Ctrl-C: stop a reply, else clear the line */
        if (app->generating) stop_reply(app);
        else tui_input_set("");
        return;
    }
    if (k == KEY_PPAGE || k == TUI_WHEEL_UP) {
        app->scroll += k == KEY_PPAGE ? (app->L.pane[VIZ_PANE_CHAT].h > 4 ? app->L.pane[VIZ_PANE_CHAT].h - 2 : 2) : 3;
        return;
    }
    if (k == KEY_NPAGE || k == TUI_WHEEL_DOWN) {
        app->scroll -= k == KEY_NPAGE ? (app->L.pane[VIZ_PANE_CHAT].h > 4 ? app->L.pane[VIZ_PANE_CHAT].h - 2 : 2) : 3;
        if (app->scroll < 0) app->scroll = 0;
        return;
    }
    if (k == TUI_CLICK) {
        int x, y;
        tui_term_click_at(&x, &y);
        on_click(app, x, y);
        return;
    }
    if (k == '\t' || k == KEY_BTAB) {
        if (k == '\t' && app->focus == VIZ_PANE_CHAT && slash_is_command(tui_input_text(NULL)) &&
            !strchr(tui_input_text(NULL), ' ')) {
            complete_slash(app);
            return;
        }
        app->focus = next_pane(app, k == '\t' ? 1 : -1);
        if (app->focus != VIZ_PANE_CHAT) app->fold = app->focus;
        return;
    }
    if (step_keys(app, k)) return;
    bool empty = tui_input_empty();
    if (k == '?' && empty) { app->help = true; app->help_scroll = 0; return; }
    if (app->focus != VIZ_PANE_CHAT) {
        if (view_keys(app, k)) return;
        /* any other key goes back to typing */
        app->focus = VIZ_PANE_CHAT;
    }
    if (k == 4 && empty && app->generating) { stop_reply(app); }
    tui_input_key(k);
}

/* ---- main ------------------------------------------------------------------------ */

static void draw_now(tui_app *app)
{
    double t0 = eng_now_ms();
    int w, h;
    tui_term_size(&w, &h);
    if (viz_grid_resize(&app->grid, w, h) != 0) return;
    app->w = w;
    app->h = h;
    tui_draw(app);
    viz_grid_quantize(&app->grid, app->depth);
    tui_term_blit(&app->grid, app->cur_x, app->cur_y);
    app->dirty = false;
    app->last_draw_ms = eng_now_ms();
    app->last_draw_cost = app->last_draw_ms - t0;
    if (app->generating) {
        app->draw_ms += app->last_draw_ms - t0;
        app->frames++;
    }
}

int tui_run(const tui_opts *o)
{
    static tui_app A;
    tui_app *app = &A;
    memset(app, 0, sizeof *app);
    app->opts = o;
    app->reply_msg = -1;
    app->head = -1;
    app->cur_q = app->cur_k = -1;
    app->fold = VIZ_PANE_ATTN;
    app->focus = VIZ_PANE_CHAT;
    app->theme = viz_theme_named(o->theme);
    if (!app->theme) app->theme = viz_theme_named("dark");
    snprintf(app->model_dir, sizeof app->model_dir, "%s", o->model_dir);

    /* load first, so a bad folder is reported on a normal terminal */
    int rc = cli_open_conv("attnscope", o->model_dir, o->common, &app->conv);
    if (rc != 0) return rc;
    if (o->common->system && *o->common->system) {
        eng_err err;
        if (conv_set_system(app->conv, o->common->system, &err) != ENG_OK) {
            fprintf(stderr, "attnscope: --system: %s\n", err.msg);
            conv_close(app->conv);
            return 2;
        }
    }
    if (attn_init(&app->attn, conv_model(app->conv)) != 0) {
        fprintf(stderr, "attnscope: out of memory\n");
        conv_close(app->conv);
        return 1;
    }
    session_set_observe(conv_session(app->conv), true);

    char why[256];
    if (tui_term_open(o->mono, o->no_mouse, &app->depth, why, sizeof why) != 0) {
        fprintf(stderr, "attnscope: %s\n", why);
        conv_close(app->conv);
        attn_free(&app->attn);
        return 1;
    }
    if (tui_input_open(o->history_path, on_line, app) != 0) {
        tui_term_close();
        fprintf(stderr, "attnscope: cannot start readline\n");
        conv_close(app->conv);
        return 1;
    }

    app->sctx = (slash_ctx){
        .conv = app->conv, .models_dir = o->models_dir, .tui = true,
        .say = say_cb, .ud = app,
        .step = hook_step, .layer = hook_layer, .head = hook_head,
        .compare = hook_compare, .help = hook_help, .on_model = hook_model,
    };
    const model_t *m = conv_model(app->conv);
    sayf(app, false, "attnscope: %s (%d layers, %d heads, %d KV heads). Type a message; F1 or ? for help.",
         m->name, m->cfg.n_layers, m->cfg.n_heads, m->cfg.n_kv_heads);
    if (conv_warning(app->conv)) sayf(app, false, "warning: %s", conv_warning(app->conv));
    char *hint = slash_model_hint(app->model_dir);
    if (hint) { sayf(app, false, "suggested prompt: %s", hint); free(hint); }

    app->dirty = true;
    while (!app->quit) {
        bool busy = app->generating && !app->step_mode;
        int timeout = busy ? 0 : (app->dirty ? 0 : 100);
        int k = tui_term_key(timeout);
        while (k != ERR && !app->quit) {
            on_key(app, k);
            k = tui_term_key(0);
        }
        if (app->quit) break;
        if (app->generating && !app->step_mode) step_once(app);
        double gap = app->last_draw_cost * DRAW_SHARE;
        if (gap < FRAME_MS) gap = FRAME_MS;
        if (app->dirty && (!app->generating || app->step_mode || eng_now_ms() - app->last_draw_ms >= gap))
            draw_now(app);
    }
    if (app->generating) conv_stop_reply(app->conv);
    tui_input_close();
    tui_term_close();
    msgs_clear(app);
    free(app->msgs);
    free(app->labels);
    for (int i = 0; i < 2; i++) free(app->last[i].ms);
    attn_free(&app->attn);
    viz_grid_free(&app->grid);
    conv_close(app->conv);
    return 0;
}
