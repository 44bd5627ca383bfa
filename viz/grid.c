/* grid.c - the plain cell grid that every viz/ renderer draws into. */
#include <string.h>
#include <utf8proc.h>

#include "common.h"
#include "grid.h"

int viz_grid_resize(viz_grid *g, int w, int h)
{
    if (w < 0) w = 0;
    if (h < 0) h = 0;
    size_t need = (size_t)w * (size_t)h;
    size_t have = (size_t)g->w * (size_t)g->h;
    if (need > have || !g->cells) {
        viz_cell *c = eng_realloc(g->cells, (need ? need : 1) * sizeof *c);
        if (!c) {
            eng_free(g->cells);
            g->cells = NULL; g->w = g->h = 0;
            return -1;
        }
        g->cells = c;
    }
    g->w = w; g->h = h;
    for (size_t i = 0; i < need; i++)
        g->cells[i] = (viz_cell){' ', VIZ_DEFAULT, VIZ_DEFAULT, 0};
    return 0;
}

void viz_grid_free(viz_grid *g)
{
    eng_free(g->cells);
    g->cells = NULL; g->w = g->h = 0;
}

viz_cell *viz_grid_at(viz_grid *g, int x, int y)
{
    if (x < 0 || y < 0 || x >= g->w || y >= g->h) return NULL;
    return &g->cells[(size_t)y * g->w + x];
}

void viz_grid_put(viz_grid *g, int x, int y, uint32_t ch, viz_color fg, viz_color bg, uint8_t attr)
{
    viz_cell *c = viz_grid_at(g, x, y);
    if (c) *c = (viz_cell){ch, fg, bg, attr};
}

void viz_grid_fill(viz_grid *g, viz_rect r, uint32_t ch, viz_color fg, viz_color bg, uint8_t attr)
{
    for (int y = r.y; y < r.y + r.h; y++)
        for (int x = r.x; x < r.x + r.w; x++)
            viz_grid_put(g, x, y, ch, fg, bg, attr);
}

int viz_utf8_decode(const char *s, int n, uint32_t *cp)
{
    if (n <= 0) { *cp = 0; return 0; }
    utf8proc_int32_t c;
    utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s, n, &c);
    if (k <= 0) { *cp = 0xFFFD; return 1; }
    *cp = (uint32_t)c;
    return (int)k;
}

int viz_utf8_encode(uint32_t cp, char *out)
{
    utf8proc_ssize_t k = utf8proc_encode_char((utf8proc_int32_t)cp, (utf8proc_uint8_t *)out);
    return k > 0 ? (int)k : 0;
}

int viz_cp_width(uint32_t cp)
{
    if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) return 0;
    int w = utf8proc_charwidth((utf8proc_int32_t)cp);
    return w < 0 ? 0 : (w > 2 ? 2 : w);
}

int viz_text_width(const char *s)
{
    int n = (int)strlen(s), w = 0;
    while (n > 0) {
        uint32_t cp;
        int k = viz_utf8_decode(s, n, &cp);
        w += viz_cp_width(cp);
        s += k; n -= k;
    }
    return w;
}

int viz_grid_text(viz_grid *g, int x, int y, int max_cols, const char *s,
                  viz_color fg, viz_color bg, uint8_t attr)
{
    int n = (int)strlen(s), used = 0;
    if (x + max_cols > g->w) max_cols = g->w - x;
    while (n > 0 && used < max_cols) {
        uint32_t cp;
        int k = viz_utf8_decode(s, n, &cp);
        s += k; n -= k;
        if (cp == '\n') break;
        int w = viz_cp_width(cp);
        if (w == 0) continue;
        if (used + w > max_cols) break;
        viz_grid_put(g, x + used, y, cp, fg, bg, attr);
        if (w == 2) viz_grid_put(g, x + used + 1, y, 0, fg, bg, attr);
        used += w;
    }
    return used;
}

int viz_grid_row_utf8(const viz_grid *g, int y, char *buf, int cap)
{
    int len = 0;
    char tmp[4];
    for (int x = 0; y >= 0 && y < g->h && x < g->w; x++) {
        uint32_t cp = g->cells[(size_t)y * g->w + x].ch;
        if (cp == 0) continue;
        int k = viz_utf8_encode(cp, tmp);
        if (len + k < cap) memcpy(buf + len, tmp, (size_t)k);
        len += k;
    }
    if (cap > 0) buf[len < cap ? len : cap - 1] = '\0';
    return len + 1;
}
