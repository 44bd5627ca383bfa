/* spark.h - sparklines, horizontal bars and percentiles for the timings and
 * candidates panes. */
#ifndef VIZ_SPARK_H
#define VIZ_SPARK_H

#include "grid.h"

/* Draws the last w of the n values v as a sparkline "▁▂▃▄▅▆▇█" at (x, y),
 * scaled from 0 to vmax (vmax <= 0: the maximum of the values drawn), so two
 * sparklines given the same vmax compare by height. Values above vmax are
 * drawn as "█"; zero and negative as "▁". Returns the cells drawn. */
int viz_spark_draw(viz_grid *g, int x, int y, int w, const float *v, int n, float vmax,
                   viz_color fg, viz_color bg);

/* The same, but the whole series fits the width: when n > w, column c shows
 * the mean of values [c n / w, (c + 1) n / w), so a trend over a long reply
 * (cost per token rising with the context) stays visible. At most 1024
 * columns. Returns the cells drawn. */
int viz_spark_draw_fit(viz_grid *g, int x, int y, int w, const float *v, int n, float vmax,
                       viz_color fg, viz_color bg);

/* Draws a bar of frac (0..1) of w cells at (x, y) with eighth-block
 * resolution ("█" full cells, then one of "▏▎▍▌▋▊▉"); the rest is left as is.
 * Returns the cells covered (rounded up). */
int viz_bar_draw(viz_grid *g, int x, int y, int w, float frac, viz_color fg, viz_color bg);

/* The p-th percentile (0..100) of n values by linear interpolation between
 * closest ranks (numpy's default); tmp has room for n floats (v is not
 * changed). 0 for n == 0. */
float viz_percentile(const float *v, int n, float p, float *tmp);

#endif
