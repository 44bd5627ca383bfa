/* tui_draw.c - the TUI's panes drawn into a viz grid: chat, attention,
 * candidates, timings, input line, status bar and the help overlay. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tui_app.h"
#include "tui_input.h"
#include "heads.h"
#include "heatmap.h"
#include "label.h"
#include "spark.h"

static const char *pane_name[VIZ_NPANES] = {"Chat", "Attention", "Candidates", "Timings"};

/* ---- small helpers ---------------------------------------------------------- */

static int text(tui_app *app, int x, int y, int maxw, const char *s, viz_color fg, uint8_t attr)
{
    return viz_grid_text(&app->grid, x, y, maxw, s, fg, app->theme->bg, attr);
}

static int textf(tui_app *app, int x, int y, int maxw, viz_color fg, uint8_t attr, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
static int textf(tui_app *app, int x, int y, int maxw, viz_color fg, uint8_t attr, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return text(app, x, y, maxw, buf, fg, attr);
}

static viz_rect content(viz_rect r) { return (viz_rect){r.x, r.y + 1, r.w, r.h - 1}; }

static void title(tui_app *app, viz_pane p, const char *extra)
{
    viz_rect r = app->L.pane[p];
    const viz_theme *t = app->theme;
    bool focus = app->focus == p;
    viz_color fg = focus ? t->focus : t->dim;
    for (int x = r.x; x < r.x + r.w; x++) viz_grid_put(&app->grid, x, r.y, 0x2500, t->border, t->bg, 0);
    int x = r.x + 1;
    if (app->L.folded && p != VIZ_PANE_CHAT && !(app->L.split && p == VIZ_PANE_ATTN)) {
        /* tabs of the folded side panes (split: the two under the attention pane) */
        for (int q = app->L.split ? VIZ_PANE_CAND : VIZ_PANE_ATTN; q <= VIZ_PANE_TIME; q++) {
            bool cur = q == (int)p;
            char lab[32];
            snprintf(lab, sizeof lab, " %s ", pane_name[q]);
            x += text(app, x, r.y, r.x + r.w - x, lab, cur ? fg : t->dim, cur ? VIZ_BOLD | VIZ_REVERSE : 0);
            x += 1;
        }
    } else {
        char lab[32];
        snprintf(lab, sizeof lab, " %s ", pane_name[p]);
        x += text(app, x, r.y, r.w - 2, lab, fg, VIZ_BOLD | (focus ? VIZ_REVERSE : 0));
    }
    if (extra && *extra) {
        x += 1;
        viz_grid_put(&app->grid, x++, r.y, ' ', t->dim, t->bg, 0);
        /* too long: drop whole " · " parts from the end, else end in "…" */
        int avail = r.x + r.w - x - 1;
        char fit[256];
        snprintf(fit, sizeof fit, "%s", extra);
        while (viz_text_width(fit) > avail) {
            char *dot = strstr(fit, " \xc2\xb7 "), *last = NULL;
            while (dot) { last = dot; dot = strstr(dot + 1, " \xc2\xb7 "); }
            if (!last) break;
            *last = 0;
        }
        if (viz_text_width(fit) > avail && avail >= 2) {
            /* cut to avail - 1 columns (at a character start) and add "…" */
            size_t o = 0;
            int wsum = 0;
            while (fit[o]) {
                uint32_t cp;
                int k = viz_utf8_decode(fit + o, (int)strlen(fit + o), &cp);
                if (k <= 0 || wsum + viz_cp_width(cp) > avail - 1) break;
                wsum += viz_cp_width(cp);
                o += (size_t)k;
            }
            snprintf(fit + o, sizeof fit - o, "\xe2\x80\xa6");
        }
        x += text(app, x, r.y, avail, fit, t->dim, 0);
        viz_grid_put(&app->grid, x, r.y, ' ', t->dim, t->bg, 0);
    }
}

/* ---- chat -------------------------------------------------------------------- */

/* Byte length of the next wrapped line of s (n bytes) in w columns; *next
 * receives where the following line starts (after a newline or a break space). */
static int wrap_line(const char *s, int n, int w, int *next)
{
    int cols = 0, i = 0, last_space = -1;
    while (i < n) {
        uint32_t cp;
        int k = viz_utf8_decode(s + i, n - i, &cp);
        if (cp == '\n') { *next = i + 1; return i; }
        int cw = viz_cp_width(cp);
        if (cols + cw > w) {
            if (last_space > 0) { *next = last_space + 1; return last_space; }
            *next = i;
            return i > 0 ? i : k;
        }
        if (cp == ' ') last_space = i;
        cols += cw;
        i += k;
    }
    *next = n;
    return n;
}

typedef struct { int msg; int start, len; bool first; } chat_line;

static int count_lines(const tui_msg *m, int w)
{
    if (m->len == 0) return 1;
    int n = 0, pos = 0;
    while (pos < (int)m->len) {
        int next;
        wrap_line(m->text + pos, (int)m->len - pos, w, &next);
        if (next <= 0) next = 1;
        pos += next;
        n++;
    }
    if (m->text[m->len - 1] == '\n') n++;
    return n;
}

static const char *gutter(tui_msg_kind k)
{
    switch (k) {
    case MSG_USER: return "you \xe2\x96\x8f";      /* "you ▏" */
    case MSG_MODEL: return "llm \xe2\x96\x8f";
    case MSG_ERROR: return "  ! ";
    default: return "  \xc2\xb7 ";
    }
}

static viz_color msg_color(tui_app *app, tui_msg_kind k)
{
    const viz_theme *t = app->theme;
    switch (k) {
    case MSG_USER: return t->user;
    case MSG_MODEL: return t->model;
    case MSG_ERROR: return t->warn;
    default: return t->dim;
    }
}

/* Token view: a message drawn as token labels with alternating backgrounds and
 * superscript ids. Returns the rows used (drawing only rows >= y_min). */
static int draw_tokens(tui_app *app, const tui_msg *m, int x0, int y, int w, int y_min, int y_max, bool draw)
{
    static const char *sup[10] = {"\xe2\x81\xb0", "\xc2\xb9", "\xc2\xb2", "\xc2\xb3", "\xe2\x81\xb4",
                                  "\xe2\x81\xb5", "\xe2\x81\xb6", "\xe2\x81\xb7", "\xe2\x81\xb8", "\xe2\x81\xb9"};
    tokenizer_t *tok = conv_tokenizer(app->conv);
    int x = x0, rows = 1;
    for (int i = 0; i < m->n_ids; i++) {
        char lab[48], ids[48] = "";
        const char *raw = tok_id_to_token(tok, m->ids[i]);
        if (raw) viz_label(raw, lab, sizeof lab, 16);
        else tok_label(tok, m->ids[i], lab, sizeof lab, 16);
        char num[16];
        snprintf(num, sizeof num, "%d", m->ids[i]);
        for (char *c = num; *c; c++) strcat(ids, sup[*c - '0']);
        int need = viz_text_width(lab) + (int)strlen(num);
        if (x + need > x0 + w && x > x0) { x = x0; y++; rows++; }
        if (draw && y >= y_min && y < y_max) {
            viz_color bg = i % 2 ? app->theme->token_b : app->theme->token_a;
            /* 16/8 colours and monochrome have no two dark backgrounds apart
             * from the terminal's: every other token is underlined instead */
            bool few = app->depth == VIZ_16 || app->depth == VIZ_8 || app->depth == VIZ_MONO;
            uint8_t at = few && i % 2 ? VIZ_UNDERLINE : 0;
            if (few) bg = VIZ_DEFAULT;
            x += viz_grid_text(&app->grid, x, y, x0 + w - x, lab, msg_color(app, m->kind), bg, at);
            x += viz_grid_text(&app->grid, x, y, x0 + w - x, ids, app->theme->dim, bg, 0);
        } else {
            x += need;
        }
    }
    return rows;
}

static void draw_chat(tui_app *app)
{
    viz_rect r = app->L.pane[VIZ_PANE_CHAT];
    char extra[64] = "";
    if (app->scroll) snprintf(extra, sizeof extra, "scrolled back %d lines (PgDn)", app->scroll);
    else if (app->token_view) snprintf(extra, sizeof extra, "token view (t)");
    title(app, VIZ_PANE_CHAT, extra);
    viz_rect c = content(r);
    int gw = 5;
    int tw = c.w - gw - 1;
    if (tw < 4 || c.h < 1) return;
    /* total rows of every message, then draw from the bottom with the scroll offset */
    int total = 0;
    int *rows = malloc((size_t)(app->n_msgs ? app->n_msgs : 1) * sizeof *rows);
    if (!rows) return;
    for (int i = 0; i < app->n_msgs; i++) {
        const tui_msg *m = &app->msgs[i];
        rows[i] = (app->token_view && m->n_ids > 0) ? draw_tokens(app, m, 0, 0, tw, 0, 0, false)
                                                     : count_lines(m, tw);
        total += rows[i];
    }
    int max_scroll = total > c.h ? total - c.h : 0;
    if (app->scroll > max_scroll) app->scroll = max_scroll;
    int top = total - c.h - app->scroll;   /* first virtual row shown */
    int vrow = 0;
    for (int i = 0; i < app->n_msgs; i++) {
        const tui_msg *m = &app->msgs[i];
        if (vrow + rows[i] <= top) { vrow += rows[i]; continue; }
        if (vrow - top >= c.h) break;
        viz_color fg = msg_color(app, m->kind);
        int y0 = c.y + vrow - top;
        if (y0 >= c.y) text(app, c.x, y0, gw, gutter(m->kind), fg, m->kind == MSG_USER ? VIZ_BOLD : 0);
        if (app->token_view && m->n_ids > 0) {
            draw_tokens(app, m, c.x + gw, y0, tw, c.y, c.y + c.h, true);
        } else {
            int pos = 0, y = y0;
            do {
                int next;
                int len = wrap_line(m->text + pos, (int)m->len - pos, tw, &next);
                if (y >= c.y && y < c.y + c.h) {
                    char line[1024];
                    int l = len < (int)sizeof line - 1 ? len : (int)sizeof line - 1;
                    memcpy(line, m->text + pos, (size_t)l);
                    line[l] = '\0';
                    text(app, c.x + gw, y, tw, line, fg, m->kind == MSG_USER ? VIZ_BOLD : 0);
                }
                if (next <= 0) next = 1;
                pos += next;
                y++;
            } while (pos < (int)m->len);
            if (i == app->reply_msg && app->generating && y - 1 >= c.y && y - 1 < c.y + c.h) {
                /* a block cursor where the next token lands */
                int lx = c.x + gw;
                const char *last = m->text;
                int lp = 0, n2;
                for (int p2 = 0; p2 < (int)m->len; ) {
                    int len2 = wrap_line(m->text + p2, (int)m->len - p2, tw, &n2);
                    lp = p2;
                    (void)len2;
                    if (n2 <= 0) n2 = 1;
                    p2 += n2;
                }
                char tail[1024];
                int tl = (int)m->len - lp;
                if (tl > (int)sizeof tail - 1) tl = (int)sizeof tail - 1;
                memcpy(tail, last + lp, (size_t)tl);
                tail[tl] = '\0';
                lx += viz_text_width(tail);
                if (m->len > 0 && m->text[m->len - 1] == '\n') lx = c.x + gw;
                if (lx < c.x + c.w) viz_grid_put(&app->grid, lx, y - 1, 0x2588, app->theme->dim, app->theme->bg, 0);
            }
        }
        vrow += rows[i];
    }
    free(rows);
}

/* ---- attention --------------------------------------------------------------- */

typedef struct { const tui_attn *a; int layer, head; } head_ctx;

static float at_head(const void *ctx, int q, int k)
{
    const head_ctx *h = ctx;
    return tui_attn_get(h->a, h->layer, h->head, q, k);
}

static float at_any(const void *ctx, int l, int h, int q, int k)
{
    return tui_attn_get(ctx, l, h, q, k);
}

/* The kind of head (l, h) (h < 0: all heads averaged) over the last 256
 * queries, or NULL; prev_occ as viz_prev_occurrence gives it. */
static const char *head_kind(const tui_attn *a, int l, int h, const int *prev_occ, float *score)
{
    head_ctx hc = {a, l, h};
    viz_head_scores sc;
    viz_head_score(at_head, &hc, a->n, prev_occ, 256, &sc);
    return viz_head_kind(&sc, score);
}

static int *prev_occurrences(tui_app *app)
{
    int n = app->attn.n;
    if (n <= 0) return NULL;
    int *occ = malloc((size_t)n * sizeof *occ);
    if (occ) viz_prev_occurrence(session_tokens(conv_session(app->conv)), n, occ);
    return occ;
}

static viz_heat_opts heat_opts(tui_app *app)
{
    viz_heat_opts o = {.depth = app->depth, .theme = app->theme, .gamma = 0.5f,
                       .cur_q = app->cur_q, .cur_k = app->cur_k,
                       .show_cursor = true, .axis_rows = -1, .fit = true,
                       .cell_w = strcmp(app->theme->name, "projector") == 0 ? 2 : 1};
    return o;
}

static void draw_attention(tui_app *app)
{
    viz_rect r = app->L.pane[VIZ_PANE_ATTN];
    tui_attn *a = &app->attn;
    char extra[200];
    int group = a->n_kv_heads > 0 ? a->n_heads / a->n_kv_heads : 1;
    int *occ = prev_occurrences(app);
    float kscore = 0.0f;
    const char *kind = app->view == VIEW_HEAD && a->n > 8 ? head_kind(a, app->layer, app->head, occ, &kscore) : NULL;
    char kind_txt[48] = "";
    if (kind) snprintf(kind_txt, sizeof kind_txt, " \xc2\xb7 %s head %.2f", kind, (double)kscore);
    if (app->view == VIEW_GRID) {
        snprintf(extra, sizeof extra, "layer x head grid \xc2\xb7 %d tokens \xc2\xb7 P prev-token I induction S sink D self \xc2\xb7 arrows, Enter zooms", a->n);
    } else if (app->head < 0) {
        snprintf(extra, sizeof extra, "L%d all %d heads averaged \xc2\xb7 %d tokens%s \xc2\xb7 [ ] layer { } head g grid",
                 app->layer, a->n_heads, a->n, kind_txt);
    } else {
        int kv = app->head / (group > 0 ? group : 1);
        if (group > 1)
            snprintf(extra, sizeof extra, "L%d H%d \xc2\xb7 kv%d shared by H%d-H%d \xc2\xb7 %d tokens%s",
                     app->layer, app->head, kv, kv * group, kv * group + group - 1, a->n, kind_txt);
        else
            snprintf(extra, sizeof extra, "L%d H%d \xc2\xb7 %d tokens%s \xc2\xb7 [ ] layer { } head a avg g grid",
                     app->layer, app->head, a->n, kind_txt);
    }
    if (a->full) {
        size_t el = strlen(extra);
        snprintf(extra + el, sizeof extra - el, " \xc2\xb7 history full at %d tokens (memory cap)", a->n);
    }
    title(app, VIZ_PANE_ATTN, extra);
    viz_rect c = content(r);
    viz_heat_opts o = heat_opts(app);
    if (app->view == VIEW_GRID) {
        /* tags: P previous-token, I induction, S sink, D self (diagonal) */
        char *tags = a->n > 8 ? calloc((size_t)a->n_layers * a->n_heads, 1) : NULL;
        for (int l = 0; tags && l < a->n_layers; l++)
            for (int h = 0; h < a->n_heads; h++) {
                const char *k = head_kind(a, l, h, occ, NULL);
                tags[l * a->n_heads + h] = !k ? 0 : k[0] == 'p' ? 'P' : k[0] == 'i' ? 'I' : k[0] == 's' && k[1] == 'i' ? 'S' : 'D';
            }
        viz_headgrid_draw(&app->grid, c, a->n_layers, a->n_heads, a->n_kv_heads, a->n, at_any, a,
                          app->layer, app->head < 0 ? 0 : app->head, tags, &o);
        free(tags);
        free(occ);
        return;
    }
    free(occ);
    head_ctx hc = {a, app->layer, app->head};
    const char *const *labels = NULL;
    const char **lp = NULL;
    if (app->n_labels >= a->n && a->n > 0) {
        lp = malloc((size_t)a->n * sizeof *lp);
        if (lp) for (int i = 0; i < a->n; i++) lp[i] = app->labels[i];
        labels = lp;
    }
    viz_rect hm = c;
    if (c.w >= 90 && c.h >= 8) {
        /* the layer strip beside the heatmap: every layer for the newest token */
        int sw = c.w / 3;
        if (sw > 48) sw = 48;
        hm.w = c.w - sw - 1;
        viz_rect sr = {c.x + hm.w + 1, c.y, sw, c.h};
        for (int y = c.y; y < c.y + c.h; y++) viz_grid_put(&app->grid, sr.x - 1, y, 0x2502, app->theme->border, app->theme->bg, 0);
        /* the strip follows the heatmap cursor's query row when it is set */
        int sq = app->cur_q >= 0 && app->cur_q < a->n ? app->cur_q : a->n - 1;
        if (sq == a->n - 1)
            textf(app, sr.x, sr.y, sr.w, app->theme->dim, 0, "layers \xe2\x86\x92 newest token%s",
                  app->head < 0 ? " (avg)" : "");
        else
            textf(app, sr.x, sr.y, sr.w, app->theme->dim, 0, "layers \xe2\x86\x92 q%d %s%s", sq,
                  sq < app->n_labels ? app->labels[sq] : "", app->head < 0 ? " (avg)" : "");
        viz_rect strip = {sr.x, sr.y + 1, sr.w, sr.h - 1};
        viz_strip_draw(&app->grid, strip, a->n_layers, a->n_heads, sq + 1, app->head, at_any, a, app->layer, &o);
    }
    viz_heatmap_draw(&app->grid, hm, a->n, at_head, &hc, labels, &o, &app->heat);
    app->heat_drawn = true;
    free(lp);
}

/* ---- candidates ---------------------------------------------------------------- */

static void draw_candidates(tui_app *app)
{
    viz_rect r = app->L.pane[VIZ_PANE_CAND];
    const sampler_report *rep = sampler_last(conv_sampler(app->conv));
    const sampler_params *sp = conv_sampling(app->conv);
    char extra[128];
    snprintf(extra, sizeof extra, "%s%s", rep && rep->chosen >= 0 ? (rep->greedy ? "greedy" : "sampled") : "no step yet",
             app->step_mode && app->generating ? " \xc2\xb7 \xe2\x86\x91\xe2\x86\x93 + Enter pick, space next" : "");
    title(app, VIZ_PANE_CAND, extra);
    viz_rect c = content(r);
    if (!rep || rep->n_cands == 0 || c.h < 2) {
        text(app, c.x + 1, c.y, c.w - 1, "the next-token candidates appear here as the model writes", app->theme->dim, 0);
        return;
    }
    int stages[SAMPLER_NSTAGES], ns = 0;
    stages[ns++] = SAMPLER_ST_RAW;
    if (sp->repeat_penalty != 1.0f) stages[ns++] = SAMPLER_ST_REPEAT;
    if (sp->presence_penalty != 0.0f || sp->frequency_penalty != 0.0f) stages[ns++] = SAMPLER_ST_PRESENCE;
    stages[ns++] = SAMPLER_ST_TEMP;
    stages[ns++] = SAMPLER_ST_TOPK;
    stages[ns++] = SAMPLER_ST_TOPP;
    stages[ns++] = SAMPLER_ST_MINP;
    int lw = 14;
    int cw = (c.w - lw) / ns;
    if (cw < 6) { ns = 2; stages[1] = SAMPLER_ST_MINP; cw = (c.w - lw) / ns; }
    const viz_theme *t = app->theme;
    text(app, c.x, c.y, lw, "token", t->dim, 0);
    for (int s = 0; s < ns; s++) {
        const char *nm = sampler_stage_name(stages[s]);
        if ((int)strlen(nm) > cw - 1) {   /* a narrow column: a short name, not a cut one */
            if (strcmp(nm, "repeat") == 0) nm = "rep";
            else if (strcmp(nm, "presence") == 0) nm = "pres";
        }
        text(app, c.x + lw + s * cw, c.y, cw - 1, nm, t->dim, VIZ_UNDERLINE);
    }
    tokenizer_t *tok = conv_tokenizer(app->conv);
    int rows = rep->n_cands < c.h - 1 ? rep->n_cands : c.h - 1;
    for (int i = 0; i < rows; i++) {
        const sampler_cand *cd = &rep->cands[i];
        int y = c.y + 1 + i;
        bool chosen = cd->token == rep->chosen;
        bool sel = app->step_mode && app->generating && i == app->cand_sel;
        char lab[48];
        const char *raw = tok_id_to_token(tok, cd->token);
        if (raw) viz_label(raw, lab, sizeof lab, lw - 3);
        else tok_label(tok, cd->token, lab, sizeof lab, lw - 3);
        text(app, c.x, y, 2, chosen ? "\xe2\x96\xb6" : (sel ? "\xe2\x80\xa3" : " "), chosen ? t->bar_pick : t->focus, VIZ_BOLD);
        text(app, c.x + 2, y, lw - 3, lab, chosen ? t->bar_pick : t->fg, (chosen ? VIZ_BOLD : 0) | (sel ? VIZ_REVERSE : 0));
        for (int s = 0; s < ns; s++) {
            float p = cd->prob[stages[s]];
            int x = c.x + lw + s * cw;
            int bw = cw - 5;
            if (bw < 1) bw = 1;
            viz_bar_draw(&app->grid, x, y, bw, p, chosen ? t->bar_pick : t->bar, t->bg);
            char num[8];
            if (p <= 0.0f) snprintf(num, sizeof num, "  -");
            else if (p >= 0.995f) snprintf(num, sizeof num, "1.0");
            else snprintf(num, sizeof num, ".%02d", (int)lroundf(p * 100.0f));
            text(app, x + bw, y, 4, num, p > 0.0f ? t->fg : t->dim, 0);
        }
    }
    if (c.h - 1 > rows + 1)
        textf(app, c.x, c.y + 1 + rows + (c.h - 1 > rows + 2 ? 1 : 0), c.w, t->dim, 0,
              "T %.2g  top-k %d  top-p %.2g  min-p %.2g  rep %.2g  \xc2\xb7 %d kept  u=%.3f",
              (double)sp->temperature, sp->top_k, (double)sp->top_p, (double)sp->min_p,
              (double)sp->repeat_penalty, rep->n_kept, rep->u);
}

/* ---- timings ------------------------------------------------------------------- */

static void fmt_bytes(char *buf, size_t cap, size_t b)
{
    if (b >= (1u << 30)) snprintf(buf, cap, "%.2f GiB", (double)b / (1u << 30));
    else if (b >= (1u << 20)) snprintf(buf, cap, "%.1f MiB", (double)b / (1u << 20));
    else snprintf(buf, cap, "%.1f KiB", (double)b / 1024.0);
}

/* viz_percentile with scratch room for any n (replies can exceed the stack buffer). */
static float pct(const float *v, int n, float p)
{
    float st[1024];
    float *tmp = n <= 1024 ? st : malloc((size_t)n * sizeof *tmp);
    if (!tmp) return 0.0f;
    float r = viz_percentile(v, n, p, tmp);
    if (tmp != st) free(tmp);
    return r;
}

static void draw_timings(tui_app *app)
{
    viz_rect r = app->L.pane[VIZ_PANE_TIME];
    const conv_timings *tm = conv_last_timings(app->conv);
    title(app, VIZ_PANE_TIME, app->compare_phase ? "comparing cache on / off..." : "prefill, decode, KV cache");
    viz_rect c = content(r);
    const viz_theme *t = app->theme;
    int y = c.y, yend = c.y + c.h;
    if (c.h < 2) return;
    int n;
    const double *ms = conv_token_ms(app->conv, &n);
    float dec[4096];
    int nd = 0;
    for (int i = 1; i < n && nd < 4096; i++) dec[nd++] = (float)ms[i];
    if (tm && tm->prompt_tokens > 0) {
        double pf = tm->prefill_ms > 0 ? tm->prefill_tokens * 1000.0 / tm->prefill_ms : 0;
        if (tm->prefill_tokens > 0)
            textf(app, c.x, y++, c.w, t->fg, 0, "prefill %d tok (%d new)  %.1f ms  %.1f tok/s  TTFT %.1f ms",
                  tm->prompt_tokens, tm->prefill_tokens, tm->prefill_ms, pf, tm->ttft_ms);
        else   /* a regenerated reply reuses the whole prompt: no prefill to time */
            textf(app, c.x, y++, c.w, t->fg, 0, "prefill none: %d prompt tok reused  TTFT %.1f ms",
                  tm->prompt_tokens, tm->ttft_ms);
        if (y >= yend) return;
        double dt = tm->decode_evals > 0 ? tm->decode_ms / tm->decode_evals : 0;
        textf(app, c.x, y++, c.w, t->fg, 0, "decode  %d tok  %.2f ms/tok  %.1f tok/s",
              tm->gen_tokens, dt, dt > 0 ? 1000.0 / dt : 0.0);
        if (y >= yend) return;
        textf(app, c.x, y++, c.w, t->dim, 0, "        p50 %.2f  p90 %.2f  p99 %.2f ms per token",
              (double)pct(dec, nd, 50), (double)pct(dec, nd, 90),
              (double)pct(dec, nd, 99));
    } else {
        text(app, c.x, y++, c.w, "no reply yet", t->dim, 0);
    }
    if (y >= yend) return;
    /* this reply's sparkline, then the last reply with the cache on and off on one scale */
    float vmax = 0.0f;
    for (int i = 0; i < nd; i++) if (dec[i] > vmax) vmax = dec[i];
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < app->last[k].n; i++) if (app->last[k].ms[i] > vmax) vmax = app->last[k].ms[i];
    int sw = c.w - 35;   /* room for "p50 12.34 ms 1234 tok/s" after it */
    if (sw < 8) sw = c.w - 12;
    bool cache = conv_cache(app->conv);
    text(app, c.x, y, 11, "this reply", t->dim, 0);
    viz_spark_draw_fit(&app->grid, c.x + 11, y, sw, dec, nd, vmax, tm && tm->cache ? t->spark_on : t->spark_off, t->bg);
    if (nd) textf(app, c.x + 12 + (nd < sw ? nd : sw), y, 18, t->dim, 0, "%.2f ms", (double)dec[nd - 1]);
    y++;
    for (int k = 1; k >= 0 && y < yend; k--) {
        const tui_run_stats *s = &app->last[k];
        textf(app, c.x, y, 11, k ? t->spark_on : t->spark_off, VIZ_BOLD, "cache %s", k ? "on" : "off");
        if (s->valid && s->n > 0) {
            viz_spark_draw_fit(&app->grid, c.x + 11, y, sw, s->ms, s->n, vmax, k ? t->spark_on : t->spark_off, t->bg);
            double mean = s->decode_ms > 0 && s->n ? s->decode_ms / s->n : 0;
            textf(app, c.x + 12 + (s->n < sw ? s->n : sw), y, c.w, t->dim, 0, "p50 %.2f ms %.0f tok/s",
                  (double)pct(s->ms, s->n, 50), mean > 0 ? 1000.0 / mean : 0.0);
        } else {
            text(app, c.x + 11, y, c.w - 11, k ? "(none yet)" : "(none yet: /cache off or /compare)",
                 t->dim, 0);
        }
        y++;
    }
    if (y < yend && app->last[0].valid && app->last[1].valid && app->last[0].n > 0 && app->last[1].n > 0) {
        /* the race in one number: per-token cost with the cache off over on */
        float on = pct(app->last[1].ms, app->last[1].n, 50);
        float off = pct(app->last[0].ms, app->last[0].n, 50);
        if (on > 0.0f)
            textf(app, c.x, y++, c.w, t->fg, VIZ_BOLD, "cache off: %.1fx the time per token (p50)", (double)(off / on));
    }
    if (y >= yend) return;
    session_t *s = conv_session(app->conv);
    const model_t *m = conv_model(app->conv);
    size_t kv = session_kv_bytes(s), kvmax = session_kv_bytes_max(s);
    char a[32], b[32];
    fmt_bytes(a, sizeof a, kv);
    fmt_bytes(b, sizeof b, kvmax);
    int len = session_len(s);
    textf(app, c.x, y++, c.w, t->fg, 0, "KV cache %s of %s  (%s)", a, b, cache ? "on" : "off: recomputed every token");
    if (y < yend) {
        /* bytes per element from the maximum when nothing is cached yet */
        size_t row = (size_t)2 * m->cfg.n_layers * m->cfg.n_kv_heads * m->cfg.head_dim;
        int mx = session_max(s);
        size_t per = len > 0 && row ? kv / (row * (size_t)len) : mx > 0 && row ? kvmax / (row * (size_t)mx) : 0;
        textf(app, c.x, y++, c.w, t->dim, 0, "= 2 x %d layers x %d kv heads x %d dims x %d tok x %zu B",
              m->cfg.n_layers, m->cfg.n_kv_heads, m->cfg.head_dim, len, per);
    }
    if (y < yend) {
        int mw = c.w - 2;
        viz_bar_draw(&app->grid, c.x, y, mw, kvmax ? (float)kv / (float)kvmax : 0.0f, t->bar, t->masked);
        for (int x = c.x; x < c.x + mw; x++) {
            viz_cell *cell = viz_grid_at(&app->grid, x, y);
            if (cell && cell->ch == ' ') { cell->ch = 0x2591; cell->fg = t->border; }
        }
        y++;
    }
}

/* ---- input, status, help --------------------------------------------------------- */

static void draw_input(tui_app *app)
{
    viz_rect r = app->L.input;
    const viz_theme *t = app->theme;
    int point;
    const char *s = tui_input_text(&point);
    const char *prompt = app->generating ? (app->step_mode ? "step\xe2\x80\xba " : "  \xe2\x80\xa6 ") : "  \xe2\x80\xba ";
    int pw = 4;
    text(app, r.x, r.y, pw, prompt, app->focus == VIZ_PANE_CHAT ? t->focus : t->dim, VIZ_BOLD);
    /* lines of the input, the cursor's line kept in view */
    int n = (int)strlen(s), pos = 0, line = 0, cur_line = 0, cur_col = 0;
    int w = r.w - pw - 1;
    struct { int start, len; } lines[64];
    int nl = 0;
    while (nl < 64) {
        int next;
        int len = wrap_line(s + pos, n - pos, w, &next);
        lines[nl].start = pos;
        lines[nl].len = len;
        nl++;
        if (point >= pos && (point <= pos + len)) {
            cur_line = nl - 1;
            char tmp[1024];
            int l = point - pos < (int)sizeof tmp - 1 ? point - pos : (int)sizeof tmp - 1;
            memcpy(tmp, s + pos, (size_t)l);
            tmp[l] = '\0';
            cur_col = viz_text_width(tmp);
        }
        if (next <= 0 || pos + next >= n) {
            if (pos + next >= n && n > 0 && s[n - 1] == '\n' && nl < 64) {
                lines[nl].start = n; lines[nl].len = 0; nl++;
                if (point == n) { cur_line = nl - 1; cur_col = 0; }
            }
            break;
        }
        pos += next;
    }
    int first = cur_line - r.h + 1;
    if (first < 0) first = 0;
    for (line = 0; line < r.h && first + line < nl; line++) {
        char tmp[1024];
        int l = lines[first + line].len < (int)sizeof tmp - 1 ? lines[first + line].len : (int)sizeof tmp - 1;
        memcpy(tmp, s + lines[first + line].start, (size_t)l);
        tmp[l] = '\0';
        text(app, r.x + pw, r.y + line, w, tmp, t->fg, 0);
    }
    if (n == 0 && !app->generating)
        text(app, r.x + pw, r.y, w, "type a message, /help for commands, F1 keys", t->dim, VIZ_DIM);
    app->cur_x = r.x + pw + cur_col;
    app->cur_y = r.y + (cur_line - first);
    if (app->focus != VIZ_PANE_CHAT || app->help) app->cur_x = -1;
}

static void draw_status(tui_app *app)
{
    viz_rect r = app->L.status;
    const viz_theme *t = app->theme;
    /* monochrome has no status colours: reverse video keeps the bar apart */
    uint8_t sa = app->depth == VIZ_MONO ? VIZ_REVERSE : 0;
    viz_grid_fill(&app->grid, r, ' ', t->status_fg, t->status_bg, sa);
    const sampler_params *p = conv_sampling(app->conv);
    session_t *s = conv_session(app->conv);
    bool wide = r.w >= 120;
    char buf[512], speed[32] = "", step[48] = "", sampling[128];
    if (app->generating || app->live_tok_s > 0) snprintf(speed, sizeof speed, " \xe2\x94\x82 %.1f tok/s", app->live_tok_s);
    if (app->step_mode)
        snprintf(step, sizeof step, app->generating ? " \xe2\x94\x82 STEP %d tok" : " \xe2\x94\x82 STEP", app->gen_tokens);
    if (wide)
        snprintf(sampling, sizeof sampling, "T %.2g  top-k %d  top-p %.2g  min-p %.2g  rep %.2g",
                 (double)p->temperature, p->top_k, (double)p->top_p, (double)p->min_p, (double)p->repeat_penalty);
    else
        snprintf(sampling, sizeof sampling, "T%.2g k%d p%.2g m%.2g r%.2g",
                 (double)p->temperature, p->top_k, (double)p->top_p, (double)p->min_p, (double)p->repeat_penalty);
    const char *dev = app->opts->common && app->opts->common->device ? app->opts->common->device : "cpu";
    snprintf(buf, sizeof buf, " %s%s \xe2\x94\x82 %s \xe2\x94\x82 cache %s \xe2\x94\x82 %s \xe2\x94\x82 ctx %d/%d%s%s",
             conv_model(app->conv)->name, step, dev, conv_cache(app->conv) ? "on" : "off", sampling,
             session_len(s), session_max(s), speed,
             app->generating ? (wide ? " \xe2\x94\x82 generating (Esc stops)" : " \xe2\x94\x82 Esc stops") : "");
    if (viz_text_width(buf) > r.w)   /* too long: the sampling settings go last, where the cut falls */
        snprintf(buf, sizeof buf, " %s%s \xe2\x94\x82 %s \xe2\x94\x82 cache %s \xe2\x94\x82 ctx %d/%d%s%s \xe2\x94\x82 %s",
                 conv_model(app->conv)->name, step, dev, conv_cache(app->conv) ? "on" : "off",
                 session_len(s), session_max(s), speed, app->generating ? " \xe2\x94\x82 Esc stops" : "", sampling);
    int used = viz_grid_text(&app->grid, r.x, r.y, r.w, buf, t->status_fg, t->status_bg, sa);
    const char *hint = wide ? "F1 help " : "F1 ";
    int hw = viz_text_width(hint);
    if (used + hw + 1 < r.w) viz_grid_text(&app->grid, r.x + r.w - hw, r.y, hw, hint, t->status_fg, t->status_bg, VIZ_BOLD | sa);
}

static const char *const help_keys[] = {
    "Keys",
    "  F1, ? (empty line)   this help (Esc, q or F1 closes it)",
    "  Tab / Shift-Tab      move focus: chat, attention, candidates, timings",
    "  Tab after /x         complete a slash command",
    "  Enter                send the message (or run the /command)",
    "  \\ at the end, Alt-Enter   continue the message on a new line",
    "  Up / Down            history (shared with --plain); Emacs keys edit",
    "  Esc, Ctrl-C          stop the reply being generated",
    "  Ctrl-D               quit (on an empty line)",
    "  PgUp / PgDn, wheel   scroll the chat",
    "  left click           focus a pane; on the heatmap, move the cursor there",
    "  With a pane focused (Tab):",
    "  [ ]  { }             previous / next layer, previous / next head",
    "  a                    all heads averaged",
    "  g                    layer x head grid (arrows pick, Enter zooms)",
    "  arrows, Enter        move the heatmap cursor; Enter follows the newest token",
    "  s                    step mode on/off",
    "  t                    token view in the chat (boundaries and ids)",
    "  In step mode:",
    "  space or n           generate exactly one token",
    "  Up / Down, Enter     pick another candidate for the last token",
    "",
    "Commands",
    NULL,
};

/* Logical help line li (keys, then one per slash command) into line; *indent
 * is the column its description starts at (continuations line up there).
 * Returns false past the end. */
static bool help_logical(const slash_cmd *cmds, int n_cmd, int nk, int li, char *line, size_t cap,
                         int *indent, bool *head)
{
    *head = false;
    if (li < nk) {
        snprintf(line, cap, "%s", help_keys[li]);
        *head = help_keys[li][0] && help_keys[li][0] != ' ';
        *indent = 23;
        return true;
    }
    if (li - nk < n_cmd) {
        snprintf(line, cap, "  %-22s %s", cmds[li - nk].usage, cmds[li - nk].help);
        *indent = 25;
        return true;
    }
    return false;
}

/* The byte length of the first piece of s that fits w columns, broken at a
 * space when there is one (help text is ASCII). */
static int help_piece(const char *s, int w)
{
    int n = (int)strlen(s);
    if (n <= w) return n;
    int cut = w;
    while (cut > w / 2 && s[cut] != ' ') cut--;
    return s[cut] == ' ' ? cut : w;
}

/* Draws (draw) or counts the screen lines of the help text wrapped to w
 * columns, starting at screen line `from` of the text, at most `rows` lines. */
static int help_lines(tui_app *app, const slash_cmd *cmds, int n_cmd, int nk, int x, int y, int w,
                      int from, int rows, viz_color bg, bool draw)
{
    const viz_theme *t = app->theme;
    int v = 0;
    char line[512];
    int indent;
    bool head;
    for (int li = 0; help_logical(cmds, n_cmd, nk, li, line, sizeof line, &indent, &head); li++) {
        if (indent > w / 2) indent = 4;
        const char *p = line;
        int pad = 0;
        for (;;) {
            int n = help_piece(p, w - pad);
            if (draw && v >= from && v < from + rows) {
                char seg[512];
                snprintf(seg, sizeof seg, "%.*s", n, p);
                viz_grid_text(&app->grid, x + pad, y + v - from, w - pad, seg, head ? t->focus : t->fg, bg,
                              head ? VIZ_BOLD : 0);
            }
            v++;
            p += n;
            while (*p == ' ') p++;
            if (!*p) break;
            pad = indent;
        }
    }
    return v;
}

static void draw_help(tui_app *app)
{
    const viz_theme *t = app->theme;
    int n_cmd;
    const slash_cmd *cmds = slash_table(&n_cmd);
    int nk = 0;
    while (help_keys[nk]) nk++;
    int w = app->w - 4 < 100 ? app->w - 4 : 100;
    int total = help_lines(app, cmds, n_cmd, nk, 0, 0, w - 4, 0, 0, VIZ_DEFAULT, false);
    int h = app->h - 2 < total + 2 ? app->h - 2 : total + 2;
    int x0 = (app->w - w) / 2, y0 = (app->h - h) / 2;
    viz_rect box = {x0, y0, w, h};
    viz_color bg = t->bg == VIZ_DEFAULT ? VIZ_RGB(24, 24, 24) : t->bg;
    if (app->depth == VIZ_MONO) bg = VIZ_DEFAULT;
    viz_grid_fill(&app->grid, box, ' ', t->fg, bg, 0);
    for (int x = x0; x < x0 + w; x++) {
        viz_grid_put(&app->grid, x, y0, 0x2500, t->focus, bg, 0);
        viz_grid_put(&app->grid, x, y0 + h - 1, 0x2500, t->focus, bg, 0);
    }
    for (int y = y0; y < y0 + h; y++) {
        viz_grid_put(&app->grid, x0, y, 0x2502, t->focus, bg, 0);
        viz_grid_put(&app->grid, x0 + w - 1, y, 0x2502, t->focus, bg, 0);
    }
    viz_grid_put(&app->grid, x0, y0, 0x250C, t->focus, bg, 0);
    viz_grid_put(&app->grid, x0 + w - 1, y0, 0x2510, t->focus, bg, 0);
    viz_grid_put(&app->grid, x0, y0 + h - 1, 0x2514, t->focus, bg, 0);
    viz_grid_put(&app->grid, x0 + w - 1, y0 + h - 1, 0x2518, t->focus, bg, 0);
    viz_grid_text(&app->grid, x0 + 2, y0, w - 4, " Help \xc2\xb7 attnscope ", t->focus, bg, VIZ_BOLD);
    int rows = h - 2;
    if (app->help_scroll > total - rows) app->help_scroll = total - rows > 0 ? total - rows : 0;
    help_lines(app, cmds, n_cmd, nk, x0 + 2, y0 + 1, w - 4, app->help_scroll, rows, bg, true);
    if (total > rows) {
        char sc[64];
        snprintf(sc, sizeof sc, " \xe2\x86\x91\xe2\x86\x93 PgUp PgDn scroll %d/%d ",
                 app->help_scroll + rows < total ? app->help_scroll + rows : total, total);
        int sw = viz_text_width(sc);
        viz_grid_text(&app->grid, x0 + w - sw - 2, y0 + h - 1, sw, sc, t->focus, bg, 0);
    }
}

/* ---- the whole screen --------------------------------------------------------------- */

void tui_draw(tui_app *app)
{
    const viz_theme *t = app->theme;
    app->heat_drawn = false;
    viz_grid_fill(&app->grid, (viz_rect){0, 0, app->w, app->h}, ' ', t->fg, t->bg, 0);
    /* input rows: the lines of the text being edited */
    const char *s = tui_input_text(NULL);
    int rows = 1;
    for (const char *p = s; *p; p++) if (*p == '\n') rows++;
    rows += viz_text_width(s) / (app->w > 10 ? app->w - 6 : 4);
    viz_layout_compute(&app->L, app->w, app->h, rows, app->fold);
    if (app->L.too_small) {
        viz_draw_too_small(&app->grid, app->L.need_w, app->L.need_h, t->warn);
        app->cur_x = -1;
        return;
    }
    if (app->L.folded && app->focus != VIZ_PANE_CHAT && !app->L.visible[app->focus]) app->focus = app->fold;
    if (app->L.vsep_x >= 0)
        for (int y = 0; y < app->L.input.y; y++)
            viz_grid_put(&app->grid, app->L.vsep_x, y, y == 0 ? 0x252C : 0x2502, t->border, t->bg, 0);
    if (app->L.split) {
        viz_pane low = app->L.visible[VIZ_PANE_TIME] ? VIZ_PANE_TIME : VIZ_PANE_CAND;
        viz_grid_put(&app->grid, app->L.vsep_x, app->L.pane[low].y, 0x251C, t->border, t->bg, 0);
    }
    if (!app->L.folded) {
        /* between candidates and timings */
        viz_rect tp = app->L.pane[VIZ_PANE_TIME];
        for (int y = tp.y; y < tp.y + tp.h; y++)
            viz_grid_put(&app->grid, tp.x - 1, y, y == tp.y ? 0x252C : 0x2502, t->border, t->bg, 0);
        viz_grid_put(&app->grid, app->L.vsep_x, tp.y, 0x251C, t->border, t->bg, 0);
    }
    draw_chat(app);
    if (app->L.visible[VIZ_PANE_ATTN]) draw_attention(app);
    if (app->L.visible[VIZ_PANE_CAND]) draw_candidates(app);
    if (app->L.visible[VIZ_PANE_TIME]) draw_timings(app);
    draw_input(app);
    draw_status(app);
    if (app->help) draw_help(app);
    /* viz/ draws on "the terminal's own" colours; themes with their own
     * background (light, projector) want theirs everywhere instead */
    if (t->bg != VIZ_DEFAULT || t->fg != VIZ_DEFAULT) {
        size_t n = (size_t)app->grid.w * (size_t)app->grid.h;
        for (size_t i = 0; i < n; i++) {
            viz_cell *c = &app->grid.cells[i];
            if (c->bg == VIZ_DEFAULT) c->bg = t->bg;
            if (c->fg == VIZ_DEFAULT) c->fg = t->fg;
        }
    }
}
