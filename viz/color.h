/* color.h - perceptual colour maps (viridis, magma), their mapping to what a
 * terminal can show (truecolor, xterm-256, 16, 8 colours, monochrome shades)
 * and the dark, light and projector themes. */
#ifndef VIZ_COLOR_H
#define VIZ_COLOR_H

#include "grid.h"

typedef enum { VIZ_TRUECOLOR = 0, VIZ_256, VIZ_16, VIZ_8, VIZ_MONO } viz_depth;
typedef enum { VIZ_VIRIDIS = 0, VIZ_MAGMA } viz_cmap;

/* The colour map's 24-bit colour at t in [0, 1] (clamped; NaN counts as 0),
 * interpolated linearly between the map's published 9-step anchors. */
viz_color viz_cmap_rgb(viz_cmap m, float t);

/* The nearest xterm-256 index to a 24-bit colour: the nearer of the 6x6x6
 * cube (levels 0, 95, 135, 175, 215, 255; indices 16..231) and the grey ramp
 * (8 + 10 i; indices 232..255), by squared RGB distance. */
int viz_rgb_to_256(int r, int g, int b);

/* The nearest of the 16 (or 8) standard xterm colours, indices 0..15 (0..7). */
int viz_rgb_to_16(int r, int g, int b);
int viz_rgb_to_8(int r, int g, int b);

/* c as the given depth shows it: 24-bit colours become palette indices for
 * 256/16/8, and VIZ_DEFAULT for monochrome; palette indices and VIZ_DEFAULT
 * pass through (a 256-index is folded to 16/8 through its RGB value). */
viz_color viz_color_for_depth(viz_color c, viz_depth d);

/* The same for a foreground (text) colour: at 8 colours a colour that is not
 * near-black (some channel >= 64) never becomes black (0), which would vanish
 * on a dark background; it becomes white (7) instead. */
viz_color viz_fg_for_depth(viz_color c, viz_depth d);

/* Rewrites every cell colour of g for depth d (backgrounds as
 * viz_color_for_depth, foregrounds as viz_fg_for_depth). */
void viz_grid_quantize(viz_grid *g, viz_depth d);

/* The 24-bit value of an xterm palette index (0..255). */
viz_color viz_palette_rgb(int idx);

/* The monochrome shade for t in [0, 1]: one of " ░▒▓█" (5 levels). */
uint32_t viz_shade(float t);

/* What a theme colours, as 24-bit colours (VIZ_DEFAULT = the terminal's own). */
typedef struct {
    const char *name;
    viz_cmap cmap;
    viz_color fg, bg;          /* text and pane background */
    viz_color dim;             /* secondary text, axis labels */
    viz_color border, focus;   /* pane borders; the focused pane's border/title */
    viz_color user, model;     /* chat turns */
    viz_color token_a, token_b;/* alternating token backgrounds in the token view */
    viz_color masked;          /* the masked (future) triangle of a causal heatmap */
    viz_color cursor;          /* heatmap cursor */
    viz_color bar, bar_pick;   /* candidate bars; the drawn candidate */
    viz_color status_fg, status_bg;
    viz_color warn;
    viz_color spark_on, spark_off; /* decode sparklines with the cache on / off */
} viz_theme;

/* "dark", "light" or "projector"; NULL for an unknown name. */
const viz_theme *viz_theme_named(const char *name);

#endif
