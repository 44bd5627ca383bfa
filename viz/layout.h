/* layout.h - where each pane goes for a given terminal size: everything side
 * by side from 140x36; from 100x30 the chat beside the attention pane, with
 * the candidates and the timings sharing one slot under it (split); smaller,
 * the three side panes folded into one slot; and a "too small" screen under
 * the minimum. */
#ifndef VIZ_LAYOUT_H
#define VIZ_LAYOUT_H

#include <stdbool.h>

#include "grid.h"

typedef enum { VIZ_PANE_CHAT = 0, VIZ_PANE_ATTN, VIZ_PANE_CAND, VIZ_PANE_TIME, VIZ_NPANES } viz_pane;

#define VIZ_MIN_W 60
#define VIZ_MIN_H 16
#define VIZ_FULL_W 140
#define VIZ_FULL_H 36
#define VIZ_SPLIT_W 100
#define VIZ_SPLIT_H 30

typedef struct {
    bool too_small;            /* below VIZ_MIN_W x VIZ_MIN_H: draw only the notice */
    int need_w, need_h;
    bool folded;               /* side panes share a slot (not all visible at once) */
    bool split;                /* folded, but only candidates/timings share the slot under the attention pane */
    bool stacked;              /* the side slot is below the chat, not beside it */
    viz_rect pane[VIZ_NPANES]; /* each pane's rect: title row first, then content */
    bool visible[VIZ_NPANES];
    viz_rect input;            /* readline's input rows */
    viz_rect status;           /* the status bar (last row) */
    int vsep_x;                /* column of the vertical separator, -1 when none */
} viz_layout;

/* Fills L for a w x h screen with input_rows rows of input (clamped to
 * 1..max(1, h/4)). When folded, the side slot shows pane `fold` (ATTN, CAND
 * or TIME; anything else means ATTN); when split, the slot under the
 * attention pane shows TIME when fold is TIME and CAND otherwise. Rects never overlap and all lie
 * inside the screen. */
void viz_layout_compute(viz_layout *L, int w, int h, int input_rows, viz_pane fold);

/* Writes "too small: need WxH" centred in g (whatever g's size). */
void viz_draw_too_small(viz_grid *g, int need_w, int need_h, viz_color fg);

#endif
