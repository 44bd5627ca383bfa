/* layout.c - pane placement for a terminal size. */
#include <stdio.h>
#include <string.h>

#include "layout.h"

void viz_layout_compute(viz_layout *L, int w, int h, int input_rows, viz_pane fold)
{
    memset(L, 0, sizeof *L);
    L->vsep_x = -1;
    L->need_w = VIZ_MIN_W;
    L->need_h = VIZ_MIN_H;
    if (w < VIZ_MIN_W || h < VIZ_MIN_H) {
        L->too_small = true;
        return;
    }
    int max_in = h / 4 > 1 ? h / 4 : 1;
    if (input_rows < 1) input_rows = 1;
    if (input_rows > max_in) input_rows = max_in;
    L->status = (viz_rect){0, h - 1, w, 1};
    L->input = (viz_rect){0, h - 1 - input_rows, w, input_rows};
    int body = h - 1 - input_rows;

    if (w >= VIZ_FULL_W && h >= VIZ_FULL_H) {
        int cw = w * 36 / 100;
        int rx = cw + 1, rw = w - rx;
        int ah = body * 60 / 100;
        int bw = rw / 2;
        L->pane[VIZ_PANE_CHAT] = (viz_rect){0, 0, cw, body};
        L->pane[VIZ_PANE_ATTN] = (viz_rect){rx, 0, rw, ah};
        L->pane[VIZ_PANE_CAND] = (viz_rect){rx, ah, bw, body - ah};
        L->pane[VIZ_PANE_TIME] = (viz_rect){rx + bw + 1, ah, rw - bw - 1, body - ah};
        for (int p = 0; p < VIZ_NPANES; p++) L->visible[p] = true;
        L->vsep_x = cw;
        return;
    }
    L->folded = true;
    if (w >= VIZ_SPLIT_W && h >= VIZ_SPLIT_H) {
        /* the attention pane stays in view above one slot that the candidates
         * and the timings share */
        int cw = w * 45 / 100;   /* the chat as wide as in the folded layout */
        int rx = cw + 1, rw = w - rx;
        int ah = body * 55 / 100;
        viz_pane low = fold == VIZ_PANE_TIME ? VIZ_PANE_TIME : VIZ_PANE_CAND;
        L->split = true;
        L->pane[VIZ_PANE_CHAT] = (viz_rect){0, 0, cw, body};
        L->pane[VIZ_PANE_ATTN] = (viz_rect){rx, 0, rw, ah};
        L->pane[low] = (viz_rect){rx, ah, rw, body - ah};
        L->visible[VIZ_PANE_CHAT] = L->visible[VIZ_PANE_ATTN] = L->visible[low] = true;
        L->vsep_x = cw;
        return;
    }
    if (fold != VIZ_PANE_CAND && fold != VIZ_PANE_TIME) fold = VIZ_PANE_ATTN;
    viz_rect side;
    if (w >= 100) {
        int cw = w * 45 / 100;
        L->pane[VIZ_PANE_CHAT] = (viz_rect){0, 0, cw, body};
        side = (viz_rect){cw + 1, 0, w - cw - 1, body};
        L->vsep_x = cw;
    } else {
        int ch = body * 40 / 100;
        L->stacked = true;
        L->pane[VIZ_PANE_CHAT] = (viz_rect){0, 0, w, ch};
        side = (viz_rect){0, ch, w, body - ch};
    }
    L->visible[VIZ_PANE_CHAT] = true;
    L->pane[fold] = side;
    L->visible[fold] = true;
}

void viz_draw_too_small(viz_grid *g, int need_w, int need_h, viz_color fg)
{
    char msg[64];
    snprintf(msg, sizeof msg, "too small: need %dx%d", need_w, need_h);
    int len = (int)strlen(msg);
    int x = (g->w - len) / 2, y = g->h / 2;
    if (x < 0) x = 0;
    viz_grid_text(g, x, y, g->w - x, msg, fg, VIZ_DEFAULT, 0);
}
