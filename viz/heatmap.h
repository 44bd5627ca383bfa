/* heatmap.h - attention drawn as terminal cells: one head's causal heatmap
 * (half-block cells, two query rows per character where colours allow), the
 * layer strip (every layer's attention for the newest token) and the
 * layer x head grid of small heatmaps. Data comes through accessor functions
 * so callers keep attention in whatever layout they like. */
#ifndef VIZ_HEATMAP_H
#define VIZ_HEATMAP_H

#include <stdbool.h>

#include "color.h"
#include "grid.h"

/* Attention of query q to key k, called only for 0 <= k <= q < n. */
typedef float (*viz_attn_fn)(const void *ctx, int q, int k);
/* The same for one layer and head. */
typedef float (*viz_head_fn)(const void *ctx, int layer, int head, int q, int k);

typedef struct {
    viz_depth depth;
    const viz_theme *theme;
    float gamma;        /* colour = cmap(value^gamma); 0 = 0.5 (lifts small values) */
    int cur_q, cur_k;   /* heatmap cursor; cur_q -1 = newest query, cur_k -1 = that row's maximum */
    bool show_cursor;
    int axis_rows;      /* rows of key labels under the map; -1 = by height */
    int cell_w;         /* columns per key: 0 or 1 = one, 2 = two (projector: fewer, larger cells) */
    bool fit;           /* short sequences get larger cells: one query per row (no half
                         * blocks) when all rows fit, two columns per key when all keys fit */
} viz_heat_opts;

typedef struct {
    int q0, nq;         /* query rows drawn: q0 .. q0+nq-1 */
    int k0, nk;         /* key columns drawn */
    int cur_q, cur_k;   /* the cursor after resolving -1 and clamping */
    float value;        /* attention under the cursor (0 when there are no tokens) */
    bool half;          /* half-block cells were used */
    viz_rect map;       /* cells holding the map */
} viz_heat_info;

/* The first index of a span of `span` items out of n that shows the newest
 * items and still contains `cursor` (cursor < 0: just the newest). */
int viz_window(int n, int span, int cursor);

/* The cell for a value (or for the masked triangle when masked) at depth d:
 * colour depths >= 256 get a space on a cmap background, 16/8 colours a shade
 * character in the nearest palette colour, monochrome a bare shade
 * character; masked cells are "·" (dim) in shade modes and theme->masked
 * in colour modes, never the same as a value of 0. Gamma as in viz_heat_opts. */
viz_cell viz_value_cell(float v, bool masked, viz_depth d, const viz_theme *t, float gamma);

/* Draws the n x n causal heatmap of at() into r: query labels down the left,
 * the map, key positions and labels below it, then one line with the cursor's
 * query, key and exact value and a colour legend (the masked cell, then the
 * ramp from 0 to 1; "√" when colours follow a square-root scale). labels may be NULL (then
 * positions are shown) or hold n readable labels. info may be NULL. */
void viz_heatmap_draw(viz_grid *g, viz_rect r, int n, viz_attn_fn at, const void *ctx,
                      const char *const *labels, const viz_heat_opts *o, viz_heat_info *info);

/* The layer strip: for the newest query (n - 1), one row per layer showing its
 * attention over the newest keys, averaged over heads when head < 0. Layers
 * beyond the rect's height are windowed around sel_layer (drawn in reverse). */
void viz_strip_draw(viz_grid *g, viz_rect r, int n_layers, int n_heads, int n, int head,
                    viz_head_fn at, const void *ctx, int sel_layer, const viz_heat_opts *o);

/* The layer x head grid: a small heatmap per (layer, head), each tile showing
 * the whole sequence sampled down to the tile (maximum over sampled points
 * of each block), heads grouped by the KV head they share (GQA: n_heads /
 * n_kv_heads query heads per group, groups separated by "│" and labelled
 * "kvN"). The selected tile's labels are drawn reversed. tags, when not
 * NULL, holds one character per tile (tags[layer * n_heads + head], 0 = none),
 * drawn reversed in the tile's top-left cell (e.g. 'P' previous-token head). */
void viz_headgrid_draw(viz_grid *g, viz_rect r, int n_layers, int n_heads, int n_kv_heads, int n,
                       viz_head_fn at, const void *ctx, int sel_layer, int sel_head,
                       const char *tags, const viz_heat_opts *o);

#endif
