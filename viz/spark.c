/* spark.c - sparklines, eighth-block bars, percentiles. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spark.h"

int viz_spark_draw(viz_grid *g, int x, int y, int w, const float *v, int n, float vmax,
                   viz_color fg, viz_color bg)
{
    static const uint32_t ticks[8] = {0x2581, 0x2582, 0x2583, 0x2584, 0x2585, 0x2586, 0x2587, 0x2588};
    if (w <= 0 || n <= 0) return 0;
    int first = n > w ? n - w : 0;
    if (vmax <= 0.0f)
        for (int i = first; i < n; i++)
            if (v[i] > vmax) vmax = v[i];
    int drawn = 0;
    for (int i = first; i < n; i++, drawn++) {
        int level = 0;
        if (vmax > 0.0f && v[i] > 0.0f) {
            level = (int)ceilf(v[i] / vmax * 8.0f) - 1;
            if (level < 0) level = 0;
            if (level > 7) level = 7;
        }
        viz_grid_put(g, x + drawn, y, ticks[level], fg, bg, 0);
    }
    return drawn;
}

int viz_spark_draw_fit(viz_grid *g, int x, int y, int w, const float *v, int n, float vmax,
                       viz_color fg, viz_color bg)
{
    if (w <= 0 || n <= 0) return 0;
    if (n <= w) return viz_spark_draw(g, x, y, w, v, n, vmax, fg, bg);
    float m[1024];
    if (w > 1024) w = 1024;
    for (int c = 0; c < w; c++) {
        /* column c: the mean of values [c n / w, (c + 1) n / w) */
        long a = (long)c * n / w, b = (long)(c + 1) * n / w;
        if (b <= a) b = a + 1;
        double s = 0.0;
        for (long i = a; i < b; i++) s += v[i];
        m[c] = (float)(s / (double)(b - a));
    }
    /* w means in w columns: viz_spark_draw scales them (to their largest
     * when vmax <= 0) and draws every one. */
    return viz_spark_draw(g, x, y, w, m, w, vmax, fg, bg);
}

int viz_bar_draw(viz_grid *g, int x, int y, int w, float frac, viz_color fg, viz_color bg)
{
    static const uint32_t part[8] = {0, 0x258F, 0x258E, 0x258D, 0x258C, 0x258B, 0x258A, 0x2589};
    if (w <= 0) return 0;
    if (!(frac > 0.0f)) frac = 0.0f;
    if (frac > 1.0f) frac = 1.0f;
    int eighths = (int)lroundf(frac * (float)w * 8.0f);
    int full = eighths / 8, rem = eighths % 8, i;
    for (i = 0; i < full; i++) viz_grid_put(g, x + i, y, 0x2588, fg, bg, 0);
    if (rem) viz_grid_put(g, x + i++, y, part[rem], fg, bg, 0);
    return i;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

float viz_percentile(const float *v, int n, float p, float *tmp)
{
    if (n <= 0) return 0.0f;
    memcpy(tmp, v, (size_t)n * sizeof *tmp);
    qsort(tmp, (size_t)n, sizeof *tmp, cmp_float);
    if (p <= 0.0f) return tmp[0];
    if (p >= 100.0f) return tmp[n - 1];
    double pos = (double)p / 100.0 * (n - 1);
    int lo = (int)floor(pos);
    double f = pos - lo;
    if (lo + 1 >= n) return tmp[n - 1];
    return (float)(tmp[lo] + f * (tmp[lo + 1] - tmp[lo]));
}
