/* color.c - colour maps, terminal colour depths and themes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "color.h"

/* matplotlib's viridis and magma lookup tables sampled at entries 0, 32, ...,
 * 224, 255 (t = 0, 1/8, ..., 1); between anchors we interpolate linearly. */
static const unsigned char viridis9[9][3] = {
    {0x44, 0x01, 0x54}, {0x47, 0x2d, 0x7b}, {0x3b, 0x52, 0x8b}, {0x2c, 0x72, 0x8e}, {0x21, 0x91, 0x8c},
    {0x28, 0xae, 0x80}, {0x5e, 0xc9, 0x62}, {0xad, 0xdc, 0x30}, {0xfd, 0xe7, 0x25},
};
static const unsigned char magma9[9][3] = {
    {0x00, 0x00, 0x04}, {0x1d, 0x11, 0x47}, {0x51, 0x12, 0x7c}, {0x83, 0x26, 0x81}, {0xb7, 0x37, 0x79},
    {0xe7, 0x52, 0x63}, {0xfc, 0x89, 0x61}, {0xfe, 0xc4, 0x88}, {0xfc, 0xfd, 0xbf},
};

viz_color viz_cmap_rgb(viz_cmap m, float t)
{
    const unsigned char (*a)[3] = m == VIZ_MAGMA ? magma9 : viridis9;
    if (!(t > 0.0f)) t = 0.0f;
    if (t > 1.0f) t = 1.0f;
    float x = t * 8.0f;
    int i = (int)x;
    if (i >= 8) i = 7;
    float f = x - (float)i;
    int c[3];
    for (int k = 0; k < 3; k++)
        c[k] = (int)lroundf((float)a[i][k] + f * (float)(a[i + 1][k] - a[i][k]));
    return VIZ_RGB(c[0], c[1], c[2]);
}

static const int cube[6] = {0, 95, 135, 175, 215, 255};

static int sq(int v) { return v * v; }

static int nearest_cube_level(int v)
{
    int best = 0;
    for (int i = 1; i < 6; i++)
        if (abs(cube[i] - v) < abs(cube[best] - v)) best = i;
    return best;
}

int viz_rgb_to_256(int r, int g, int b)
{
    int ri = nearest_cube_level(r), gi = nearest_cube_level(g), bi = nearest_cube_level(b);
    int cube_idx = 16 + 36 * ri + 6 * gi + bi;
    int cube_d = sq(cube[ri] - r) + sq(cube[gi] - g) + sq(cube[bi] - b);
    /* grey ramp: 8 + 10 i, i = 0..23 */
    int avg = (r + g + b) / 3;
    int gi2 = (avg - 8 + 5) / 10;
    if (gi2 < 0) gi2 = 0;
    if (gi2 > 23) gi2 = 23;
    int gv = 8 + 10 * gi2;
    int grey_d = sq(gv - r) + sq(gv - g) + sq(gv - b);
    return grey_d < cube_d ? 232 + gi2 : cube_idx;
}

/* xterm's default 16 colours. */
static const unsigned char xterm16[16][3] = {
    {0, 0, 0}, {205, 0, 0}, {0, 205, 0}, {205, 205, 0}, {0, 0, 238}, {205, 0, 205}, {0, 205, 205}, {229, 229, 229},
    {127, 127, 127}, {255, 0, 0}, {0, 255, 0}, {255, 255, 0}, {92, 92, 255}, {255, 0, 255}, {0, 255, 255}, {255, 255, 255},
};

static int nearest_of(int n, int r, int g, int b)
{
    int best = 0, bd = 1 << 30;
    for (int i = 0; i < n; i++) {
        int d = sq(xterm16[i][0] - r) + sq(xterm16[i][1] - g) + sq(xterm16[i][2] - b);
        if (d < bd) { bd = d; best = i; }
    }
    return best;
}

int viz_rgb_to_16(int r, int g, int b) { return nearest_of(16, r, g, b); }
int viz_rgb_to_8(int r, int g, int b) { return nearest_of(8, r, g, b); }

viz_color viz_palette_rgb(int idx)
{
    if (idx < 0) idx = 0;
    if (idx > 255) idx = 255;
    if (idx < 16) return VIZ_RGB(xterm16[idx][0], xterm16[idx][1], xterm16[idx][2]);
    if (idx >= 232) { int v = 8 + 10 * (idx - 232); return VIZ_RGB(v, v, v); }
    idx -= 16;
    return VIZ_RGB(cube[idx / 36], cube[(idx / 6) % 6], cube[idx % 6]);
}

viz_color viz_color_for_depth(viz_color c, viz_depth d)
{
    if (c == VIZ_DEFAULT) return c;
    if (d == VIZ_MONO) return VIZ_DEFAULT;
    if (d == VIZ_TRUECOLOR) return c;
    if (!VIZ_IS_RGB(c)) {
        if (d == VIZ_256 || (d == VIZ_16 && c < 16) || (d == VIZ_8 && c < 8)) return c;
        c = viz_palette_rgb(c);
    }
    int r = VIZ_R(c), g = VIZ_G(c), b = VIZ_B(c);
    switch (d) {
    case VIZ_256: return viz_rgb_to_256(r, g, b);
    case VIZ_16: return viz_rgb_to_16(r, g, b);
    default: return viz_rgb_to_8(r, g, b);
    }
}

viz_color viz_fg_for_depth(viz_color c, viz_depth d)
{
    viz_color q = viz_color_for_depth(c, d);
    if (d != VIZ_8 || q != 0 || !VIZ_IS_RGB(c)) return q;
    /* 8 colours have no grey: a mid grey's nearest is black, which vanishes
     * on a dark terminal; any colour brighter than near-black reads as white */
    int r = VIZ_R(c), g = VIZ_G(c), b = VIZ_B(c);
    int hi = r > g ? (r > b ? r : b) : (g > b ? g : b);
    return hi >= 64 ? 7 : q;
}

void viz_grid_quantize(viz_grid *g, viz_depth d)
{
    size_t n = (size_t)g->w * (size_t)g->h;
    for (size_t i = 0; i < n; i++) {
        g->cells[i].fg = viz_fg_for_depth(g->cells[i].fg, d);
        g->cells[i].bg = viz_color_for_depth(g->cells[i].bg, d);
    }
}

uint32_t viz_shade(float t)
{
    static const uint32_t shades[5] = {' ', 0x2591, 0x2592, 0x2593, 0x2588};
    if (!(t > 0.0f)) t = 0.0f;
    if (t > 1.0f) t = 1.0f;
    int i = (int)(t * 5.0f);
    return shades[i > 4 ? 4 : i];
}

/* Themes. The dark theme keeps the terminal's own background; no dark blue on
 * black anywhere (unreadable on projectors). */
static const viz_theme themes[] = {
    {
        .name = "dark", .cmap = VIZ_VIRIDIS,
        .fg = VIZ_DEFAULT, .bg = VIZ_DEFAULT, .dim = VIZ_RGB(150, 150, 150),
        .border = VIZ_RGB(98, 98, 98), .focus = VIZ_RGB(255, 200, 60),
        .user = VIZ_RGB(120, 200, 255), .model = VIZ_RGB(230, 230, 230),
        .token_a = VIZ_RGB(48, 48, 64), .token_b = VIZ_RGB(72, 56, 40),
        .masked = VIZ_RGB(38, 38, 38), .cursor = VIZ_RGB(255, 60, 60),
        .bar = VIZ_RGB(80, 180, 160), .bar_pick = VIZ_RGB(255, 200, 60),
        .status_fg = VIZ_RGB(20, 20, 20), .status_bg = VIZ_RGB(175, 175, 175),
        .warn = VIZ_RGB(255, 95, 95),
        .spark_on = VIZ_RGB(95, 215, 135), .spark_off = VIZ_RGB(255, 135, 95),
    },
    {
        .name = "light", .cmap = VIZ_MAGMA,
        .fg = VIZ_RGB(20, 20, 20), .bg = VIZ_RGB(250, 250, 245), .dim = VIZ_RGB(110, 110, 110),
        .border = VIZ_RGB(170, 170, 170), .focus = VIZ_RGB(200, 90, 0),
        .user = VIZ_RGB(0, 80, 170), .model = VIZ_RGB(20, 20, 20),
        .token_a = VIZ_RGB(215, 225, 245), .token_b = VIZ_RGB(245, 225, 200),
        .masked = VIZ_RGB(200, 208, 222), .cursor = VIZ_RGB(0, 170, 255),
        .bar = VIZ_RGB(40, 130, 110), .bar_pick = VIZ_RGB(200, 90, 0),
        .status_fg = VIZ_RGB(250, 250, 245), .status_bg = VIZ_RGB(60, 60, 60),
        .warn = VIZ_RGB(190, 0, 0),
        .spark_on = VIZ_RGB(0, 135, 60), .spark_off = VIZ_RGB(200, 70, 0),
    },
    {
        .name = "projector", .cmap = VIZ_VIRIDIS,
        .fg = VIZ_RGB(255, 255, 255), .bg = VIZ_RGB(0, 0, 0), .dim = VIZ_RGB(210, 210, 210),
        .border = VIZ_RGB(255, 255, 255), .focus = VIZ_RGB(255, 255, 0),
        .user = VIZ_RGB(0, 255, 255), .model = VIZ_RGB(255, 255, 255),
        .token_a = VIZ_RGB(0, 0, 0), .token_b = VIZ_RGB(90, 90, 90),
        .masked = VIZ_RGB(0, 0, 0), .cursor = VIZ_RGB(255, 0, 0),
        .bar = VIZ_RGB(0, 255, 0), .bar_pick = VIZ_RGB(255, 255, 0),
        .status_fg = VIZ_RGB(0, 0, 0), .status_bg = VIZ_RGB(255, 255, 0),
        .warn = VIZ_RGB(255, 0, 0),
        .spark_on = VIZ_RGB(0, 255, 0), .spark_off = VIZ_RGB(255, 128, 0),
    },
};

const viz_theme *viz_theme_named(const char *name)
{
    if (!name) name = "dark";
    for (size_t i = 0; i < sizeof themes / sizeof themes[0]; i++)
        if (strcmp(themes[i].name, name) == 0) return &themes[i];
    return NULL;
}
