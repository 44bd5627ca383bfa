/* heatmap.c - attention heatmaps, the layer strip and the layer x head grid as cells. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "heatmap.h"

#define HALF_UPPER 0x2580u   /* ▀ */
#define MID_DOT 0xB7u        /* · */

static float gamma_of(const viz_heat_opts *o) { return o->gamma > 0.0f ? o->gamma : 0.5f; }
static bool half_ok(viz_depth d) { return d == VIZ_TRUECOLOR || d == VIZ_256; }

int viz_window(int n, int span, int cursor)
{
    if (span <= 0 || n <= span) return 0;
    int start = n - span;
    if (cursor >= 0 && cursor < start) start = cursor;
    return start;
}

static float lift(float v, float gamma)
{
    if (!(v > 0.0f)) return 0.0f;
    if (v > 1.0f) v = 1.0f;
    return powf(v, gamma);
}

viz_cell viz_value_cell(float v, bool masked, viz_depth d, const viz_theme *t, float gamma)
{
    if (gamma <= 0.0f) gamma = 0.5f;
    float x = lift(v, gamma);
    viz_cell c = {' ', VIZ_DEFAULT, VIZ_DEFAULT, 0};
    if (d == VIZ_TRUECOLOR || d == VIZ_256) {
        c.bg = viz_color_for_depth(masked ? t->masked : viz_cmap_rgb(t->cmap, x), d);
        return c;
    }
    if (masked) {
        c.ch = MID_DOT;
        c.attr = VIZ_DIM;
        return c;
    }
    c.ch = viz_shade(x);
    if (d != VIZ_MONO) c.fg = viz_color_for_depth(viz_cmap_rgb(t->cmap, 0.25f + 0.75f * x), d);
    return c;
}

/* The colour (for half-block halves) of a value or of the masked triangle. */
static viz_color half_color(float v, bool masked, viz_depth d, const viz_theme *t, float gamma)
{
    return viz_color_for_depth(masked ? t->masked : viz_cmap_rgb(t->cmap, lift(v, gamma)), d);
}

static void label_of(const char *const *labels, int i, char *buf, size_t cap, int cols)
{
    if (labels && labels[i]) {
        /* labels are already readable; cut by columns */
        int w = 0;
        size_t o = 0;
        const char *s = labels[i];
        int left = (int)strlen(s);
        while (left > 0) {
            uint32_t cp;
            int k = viz_utf8_decode(s, left, &cp);
            int cw = viz_cp_width(cp);
            if (w + cw > cols || o + (size_t)k + 1 > cap) break;
            memcpy(buf + o, s, (size_t)k);
            o += (size_t)k; w += cw; s += k; left -= k;
        }
        buf[o] = '\0';
    } else {
        snprintf(buf, cap, "%d", i);
    }
}

void viz_heatmap_draw(viz_grid *g, viz_rect r, int n, viz_attn_fn at, const void *ctx,
                      const char *const *labels, const viz_heat_opts *o, viz_heat_info *info)
{
    viz_heat_info dummy;
    if (!info) info = &dummy;
    memset(info, 0, sizeof *info);
    const viz_theme *t = o->theme;
    float gm = gamma_of(o);
    bool half = half_ok(o->depth);
    info->half = half;
    if (r.w < 8 || r.h < 3) return;

    int axis = o->axis_rows;
    if (axis < 0) axis = r.h >= 22 ? 4 : r.h >= 16 ? 3 : r.h >= 12 ? 2 : r.h >= 8 ? 1 : 0;
    int lw = r.w / 7;
    if (lw < 4) lw = 4;
    if (lw > 10) lw = 10;
    int cw = o->cell_w == 2 ? 2 : 1;
    if (o->fit && cw == 1 && n > 0 && 2 * n <= r.w - lw) cw = 2;
    int mw = (r.w - lw) / cw;           /* keys that fit */
    int mh = r.h - axis - 1;            /* one info/legend line at the bottom */
    if (mh < 1) { axis = 0; mh = r.h - 1; }
    if (o->fit && half && n <= mh) half = false;   /* every query gets its own labelled row */
    info->half = half;
    int rows_q = half ? 2 * mh : mh;

    int nk = n < mw ? n : mw;
    int nq = n < rows_q ? n : rows_q;
    int cq = o->cur_q < 0 || o->cur_q >= n ? n - 1 : o->cur_q;
    int ck = o->cur_k;
    if (n > 0 && (ck < 0 || ck > cq)) {
        if (o->cur_k < 0) {             /* the row's maximum among the keys in view */
            int kw = viz_window(n, mw, -1);
            if (kw > cq) kw = viz_window(n, mw, cq);
            ck = kw;
            for (int k = kw + 1; k <= cq; k++)
                if (at(ctx, cq, k) > at(ctx, cq, ck)) ck = k;
        } else {
            ck = cq;
        }
    }
    int q0 = viz_window(n, rows_q, cq);
    int k0 = viz_window(n, mw, ck);
    info->q0 = q0; info->nq = nq; info->k0 = k0; info->nk = nk;
    info->cur_q = cq; info->cur_k = ck;
    info->value = n > 0 ? at(ctx, cq, ck) : 0.0f;
    info->map = (viz_rect){r.x + lw, r.y, nk * cw, half ? (nq + 1) / 2 : nq};

    /* the map and the query labels */
    char lab[64];
    for (int row = 0; row < mh; row++) {
        int qa = q0 + (half ? 2 * row : row);
        if (qa >= n) break;
        int qb = half ? qa + 1 : -1;
        int ql = (half && qb == cq) ? qb : qa;
        bool cur_row = o->show_cursor && (qa == cq || qb == cq);
        label_of(labels, ql, lab, sizeof lab, lw - 1);
        if (half && qb < n && lw >= 6) {
            /* a half-block row holds two queries: "upper lower", both shortened */
            char la[32], lb[32];
            label_of(labels, qa, la, sizeof la, (lw - 2) / 2);
            label_of(labels, qb, lb, sizeof lb, lw - 2 - viz_text_width(la));
            snprintf(lab, sizeof lab, "%s %s", la, lb);
        }
        viz_grid_text(g, r.x, r.y + row, lw - 1, lab, cur_row ? t->focus : t->dim, VIZ_DEFAULT,
                      cur_row ? VIZ_BOLD : 0);
        for (int c = 0; c < nk; c++) {
            int k = k0 + c;
            viz_cell cell;
            if (half) {
                viz_color up = half_color(k <= qa ? at(ctx, qa, k) : 0.0f, k > qa, o->depth, t, gm);
                viz_color lo = VIZ_DEFAULT;
                if (qb >= 0 && qb < n)
                    lo = half_color(k <= qb ? at(ctx, qb, k) : 0.0f, k > qb, o->depth, t, gm);
                if (o->show_cursor && k == ck) {
                    viz_color cc = viz_color_for_depth(t->cursor, o->depth);
                    if (qa == cq) up = cc;
                    if (qb == cq) lo = cc;
                }
                cell = (viz_cell){HALF_UPPER, up, lo, 0};
            } else {
                cell = viz_value_cell(k <= qa ? at(ctx, qa, k) : 0.0f, k > qa, o->depth, t, gm);
                if (o->show_cursor && k == ck && qa == cq && half_ok(o->depth)) {
                    cell.bg = viz_color_for_depth(t->cursor, o->depth);   /* as in half blocks */
                } else if (o->show_cursor && k == ck && qa == cq) {
                    cell.attr |= VIZ_REVERSE;
                    if (cell.ch == ' ') cell.ch = '+';
                }
            }
            for (int dx = 0; dx < cw; dx++) {
                viz_cell *dst = viz_grid_at(g, r.x + lw + c * cw + dx, r.y + row);
                if (dst) *dst = cell;
            }
        }
    }

    /* key axis: positions every 10 (or 5) columns, then labels written downwards */
    int ay = r.y + mh;
    if (axis >= 1) {
        int step = nk * cw >= 40 ? 10 : 5;
        for (int c = 0, x = 0; c < nk; c++) {
            int k = k0 + c;
            if (k % step == 0 && c * cw >= x) {
                char num[16];
                int len = snprintf(num, sizeof num, "%d", k);
                if (c * cw + len <= nk * cw) {
                    viz_grid_text(g, r.x + lw + c * cw, ay, len, num, t->dim, VIZ_DEFAULT, 0);
                    x = c * cw + len;
                }
            }
        }
        if (lw >= 4) viz_grid_text(g, r.x, ay, lw - 1, "q\\k", t->dim, VIZ_DEFAULT, 0);
    }
    for (int a = 1; a < axis; a++) {
        for (int c = 0; c < nk; c++) {
            int k = k0 + c;
            char full[64];
            label_of(labels, k, full, sizeof full, 32);
            /* row a shows characters (a-1) cw + 1 .. a cw (1-based) of the
             * label: one per row, or two when keys are two columns wide */
            uint32_t cps[64];
            int ncp = 0;
            for (const char *s = full; *s && ncp < 64;) {
                int kk = viz_utf8_decode(s, (int)strlen(s), &cps[ncp]);
                if (kk <= 0) break;
                s += kk; ncp++;
            }
            bool cur = o->show_cursor && k == ck;
            for (int dx = 0; dx < cw; dx++) {
                int i = (a - 1) * cw + dx;
                uint32_t cp = i < ncp ? cps[i] : ' ';
                if (viz_cp_width(cp) != 1) cp = viz_cp_width(cp) == 2 ? 0x2026 : ' ';
                viz_grid_put(g, r.x + lw + c * cw + dx, ay + a, cp, cur ? t->focus : t->dim, VIZ_DEFAULT,
                             cur ? (VIZ_BOLD | VIZ_UNDERLINE) : 0);
            }
        }
    }

    /* the cursor line and the legend */
    int iy = r.y + r.h - 1;
    int x = r.x;
    if (n > 0) {
        char ql[32], kl[32], line[128];
        label_of(labels, cq, ql, sizeof ql, 12);
        label_of(labels, ck, kl, sizeof kl, 12);
        snprintf(line, sizeof line, "q%d %s \xe2\x86\x92 k%d %s = %.3f", cq, ql, ck, kl, (double)info->value);
        x += viz_grid_text(g, x, iy, r.w, line, t->fg, VIZ_DEFAULT, VIZ_BOLD);
    } else {
        x += viz_grid_text(g, x, iy, r.w, "no tokens yet", t->dim, VIZ_DEFAULT, 0);
    }
    /* legend, right-aligned: "▒ masked  0 gradient 1 √" (the masked cell as
     * drawn, then the colour ramp; √ = colours follow the square root) when
     * it fits, else without the masked swatch */
    int lg = 10;
    const char *hi = gm == 1.0f ? " 1" : " 1 \xe2\x88\x9a";
    int hw = gm == 1.0f ? 2 : 4;
    bool with_mask = r.x + r.w - (lg + hw + 3 + 9) >= x + 2;
    int need = lg + hw + 3 + (with_mask ? 9 : 0);   /* one blank column at the right */
    int lx = r.x + r.w - need;
    if (lx >= x + 2) {
        if (with_mask) {
            viz_cell m = viz_value_cell(0.0f, true, o->depth, t, gm);
            viz_cell *dst = viz_grid_at(g, lx, iy);
            if (dst) *dst = m;
            lx += 1;
            lx += viz_grid_text(g, lx, iy, 8, " masked ", t->dim, VIZ_DEFAULT, 0);
        }
        lx += viz_grid_text(g, lx, iy, 2, "0 ", t->dim, VIZ_DEFAULT, 0);
        for (int i = 0; i < lg; i++) {
            float v = (float)i / (float)(lg - 1);
            float raw = powf(v, 1.0f / gm);   /* the value whose colour this is */
            viz_cell c = viz_value_cell(raw, false, o->depth, t, gm);
            viz_cell *dst = viz_grid_at(g, lx + i, iy);
            if (dst) *dst = c;
        }
        lx += lg;
        viz_grid_text(g, lx, iy, hw, hi, t->dim, VIZ_DEFAULT, 0);
    }
}

static float head_avg(viz_head_fn at, const void *ctx, int layer, int n_heads, int head, int q, int k)
{
    if (head >= 0) return at(ctx, layer, head, q, k);
    float s = 0.0f;
    for (int h = 0; h < n_heads; h++) s += at(ctx, layer, h, q, k);
    return s / (float)n_heads;
}

void viz_strip_draw(viz_grid *g, viz_rect r, int n_layers, int n_heads, int n, int head,
                    viz_head_fn at, const void *ctx, int sel_layer, const viz_heat_opts *o)
{
    const viz_theme *t = o->theme;
    float gm = gamma_of(o);
    if (r.w < 6 || r.h < 1 || n_layers <= 0) return;
    int lw = 4;
    int mw = r.w - lw;
    int rows = r.h < n_layers ? r.h : n_layers;
    int l0 = 0;
    if (n_layers > rows) {
        l0 = sel_layer - rows / 2;
        if (l0 < 0) l0 = 0;
        if (l0 > n_layers - rows) l0 = n_layers - rows;
    }
    int nk = n < mw ? n : mw;
    int k0 = n - nk;
    for (int i = 0; i < rows; i++) {
        int l = l0 + i;
        char lab[16];
        snprintf(lab, sizeof lab, "L%d", l);
        bool sel = l == sel_layer;
        viz_grid_text(g, r.x, r.y + i, lw - 1, lab, sel ? t->focus : t->dim, VIZ_DEFAULT,
                      sel ? VIZ_REVERSE : 0);
        for (int c = 0; c < nk && n > 0; c++) {
            float v = head_avg(at, ctx, l, n_heads, head, n - 1, k0 + c);
            viz_cell cell = viz_value_cell(v, false, o->depth, t, gm);
            viz_cell *dst = viz_grid_at(g, r.x + lw + c, r.y + i);
            if (dst) *dst = cell;
        }
    }
}

/* The maximum of up to 4 x 4 sampled points of the block of queries
 * [qa, qb) x keys [ka, kb); *masked when every sampled point is masked. */
static float block_value(viz_head_fn at, const void *ctx, int l, int h,
                         int qa, int qb, int ka, int kb, bool *masked)
{
    float best = 0.0f;
    *masked = true;
    int sq = (qb - qa + 3) / 4, sk = (kb - ka + 3) / 4;
    if (sq < 1) sq = 1;
    if (sk < 1) sk = 1;
    for (int q = qa; q < qb; q += sq)
        for (int k = ka; k < kb && k <= q; k += sk) {
            float v = at(ctx, l, h, q, k);
            if (*masked || v > best) best = v;
            *masked = false;
        }
    /* the diagonal block's own diagonal, which sampling could step over */
    if (ka < qb && kb > qa)
        for (int q = qa > ka ? qa : ka; q < qb && q < kb; q++) {
            float v = at(ctx, l, h, q, q);
            if (*masked || v > best) best = v;
            *masked = false;
        }
    return best;
}

void viz_headgrid_draw(viz_grid *g, viz_rect r, int n_layers, int n_heads, int n_kv_heads, int n,
                       viz_head_fn at, const void *ctx, int sel_layer, int sel_head,
                       const char *tags, const viz_heat_opts *o)
{
    const viz_theme *t = o->theme;
    float gm = gamma_of(o);
    bool half = half_ok(o->depth);
    if (n_layers <= 0 || n_heads <= 0 || r.w < 10 || r.h < 3) return;
    if (n_kv_heads <= 0 || n_heads % n_kv_heads) n_kv_heads = n_heads;
    int group = n_heads / n_kv_heads;
    int lw = 4;
    int tw = (r.w - lw - (n_heads - 1)) / n_heads;
    if (tw < 1) tw = 1;
    int th = (r.h - 2) / n_layers;
    if (th < 1) th = 1;
    int th_max = half ? (tw + 1) / 2 : tw;   /* keep tiles about square */
    if (th_max < 1) th_max = 1;
    if (th > th_max) th = th_max;
    int rows_fit = (r.h - 2) / th;
    int nl = rows_fit < n_layers ? rows_fit : n_layers;
    int l0 = 0;
    if (nl < n_layers) {
        l0 = sel_layer - nl / 2;
        if (l0 < 0) l0 = 0;
        if (l0 > n_layers - nl) l0 = n_layers - nl;
    }

    /* header: KV groups, then head numbers */
    for (int h = 0; h < n_heads; h++) {
        int x = r.x + lw + h * (tw + 1);
        char lab[16];
        if (h % group == 0) {
            snprintf(lab, sizeof lab, n_kv_heads == n_heads ? "" : "kv%d", h / group);
            viz_grid_text(g, x, r.y, group * (tw + 1) - 1, lab, t->dim, VIZ_DEFAULT, 0);
        }
        snprintf(lab, sizeof lab, "h%d", h);
        viz_grid_text(g, x, r.y + 1, tw, lab, h == sel_head ? t->focus : t->dim, VIZ_DEFAULT,
                      h == sel_head ? VIZ_REVERSE : 0);
        if (h % group == group - 1 && h < n_heads - 1 && group > 1)
            for (int y = r.y; y < r.y + 2 + nl * th; y++)
                viz_grid_put(g, x + tw, y, 0x2502, t->border, VIZ_DEFAULT, 0);
    }
    int pr = half ? 2 * th : th;   /* query bins per tile */
    for (int i = 0; i < nl; i++) {
        int l = l0 + i;
        int y = r.y + 2 + i * th;
        char lab[16];
        snprintf(lab, sizeof lab, "L%d", l);
        viz_grid_text(g, r.x, y, lw - 1, lab, l == sel_layer ? t->focus : t->dim, VIZ_DEFAULT,
                      l == sel_layer ? VIZ_REVERSE : 0);
        if (n <= 0) continue;
        for (int h = 0; h < n_heads; h++) {
            int x = r.x + lw + h * (tw + 1);
            for (int row = 0; row < th; row++) {
                for (int c = 0; c < tw; c++) {
                    viz_color col[2] = {VIZ_DEFAULT, VIZ_DEFAULT};
                    viz_cell cell = {' ', VIZ_DEFAULT, VIZ_DEFAULT, 0};
                    int ka = (int)((long)c * n / tw), kb = (int)((long)(c + 1) * n / tw);
                    if (n < tw) { ka = c; kb = c + 1; }
                    for (int s = 0; s < (half ? 2 : 1); s++) {
                        int b = half ? 2 * row + s : row;
                        int qa = (int)((long)b * n / pr), qb = (int)((long)(b + 1) * n / pr);
                        if (n < pr) { qa = b; qb = b + 1; }
                        if (qa >= n || ka >= n || qb <= qa || kb <= ka) continue;
                        bool masked;
                        float v = block_value(at, ctx, l, h, qa, qb, ka, kb, &masked);
                        if (half) col[s] = half_color(v, masked, o->depth, t, gm);
                        else cell = viz_value_cell(v, masked, o->depth, t, gm);
                    }
                    if (half) cell = (viz_cell){HALF_UPPER, col[0], col[1], 0};
                    viz_cell *dst = viz_grid_at(g, x + c, y + row);
                    if (dst) *dst = cell;
                }
            }
            if (tags && tags[l * n_heads + h])
                viz_grid_put(g, x, y, (uint32_t)(unsigned char)tags[l * n_heads + h], t->focus,
                             VIZ_DEFAULT, VIZ_REVERSE | VIZ_BOLD);
        }
    }
}
