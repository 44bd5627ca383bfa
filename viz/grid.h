/* grid.h - a plain grid of terminal cells (character + colours + attributes)
 * that viz/ renders into and repl/ copies to the screen; no curses here. */
#ifndef VIZ_GRID_H
#define VIZ_GRID_H

#include <stdbool.h>
#include <stdint.h>

/* A colour as viz/ hands it to the terminal layer:
 *   VIZ_DEFAULT        the terminal's own foreground/background,
 *   0 .. 255           an xterm palette index (16-, 8- and 256-colour terminals),
 *   VIZ_RGB(r, g, b)   a 24-bit colour (truecolor terminals). */
typedef int32_t viz_color;
#define VIZ_DEFAULT ((viz_color)-1)
#define VIZ_RGB(r, g, b) ((viz_color)(0x1000000 | ((uint32_t)(r) << 16) | ((uint32_t)(g) << 8) | (uint32_t)(b)))
#define VIZ_IS_RGB(c) ((c) >= 0x1000000)
#define VIZ_R(c) ((int)(((uint32_t)(c) >> 16) & 0xff))
#define VIZ_G(c) ((int)(((uint32_t)(c) >> 8) & 0xff))
#define VIZ_B(c) ((int)((uint32_t)(c) & 0xff))

enum { VIZ_BOLD = 1, VIZ_REVERSE = 2, VIZ_DIM = 4, VIZ_UNDERLINE = 8 };

/* ch is a Unicode code point; 0 marks the right half of a double-width
 * character drawn in the cell to its left. */
typedef struct {
    uint32_t ch;
    viz_color fg, bg;
    uint8_t attr;
} viz_cell;

typedef struct {
    int x, y, w, h;
} viz_rect;

typedef struct {
    int w, h;
    viz_cell *cells;   /* h rows of w cells */
} viz_grid;

/* Sizes g to w x h cells, all blank (' ', default colours). Reuses the buffer
 * when it is big enough. Returns 0, or -1 when the allocation fails (g is then
 * 0 x 0). Free with viz_grid_free (accepts a zeroed grid). */
int viz_grid_resize(viz_grid *g, int w, int h);
void viz_grid_free(viz_grid *g);

/* The cell at (x, y), or NULL outside the grid. */
viz_cell *viz_grid_at(viz_grid *g, int x, int y);

/* Sets one cell; silently clipped outside the grid. */
void viz_grid_put(viz_grid *g, int x, int y, uint32_t ch, viz_color fg, viz_color bg, uint8_t attr);

/* Fills rect r (clipped) with ch in the given colours. */
void viz_grid_fill(viz_grid *g, viz_rect r, uint32_t ch, viz_color fg, viz_color bg, uint8_t attr);

/* Writes UTF-8 text from (x, y) rightwards, at most max_cols columns (clipped
 * to the grid too), stopping at a newline or the end of the string. Wide
 * characters take two columns and are not split; invalid bytes are drawn as
 * U+FFFD. Returns the columns written. */
int viz_grid_text(viz_grid *g, int x, int y, int max_cols, const char *s,
                  viz_color fg, viz_color bg, uint8_t attr);

/* The row y as UTF-8 (trailing spaces kept), for tests and text captures.
 * Writes at most cap bytes including the NUL; returns the bytes needed. */
int viz_grid_row_utf8(const viz_grid *g, int y, char *buf, int cap);

/* Decodes one UTF-8 character at s (n bytes available) into *cp; returns its
 * length (1..4), or 1 with *cp = U+FFFD for an invalid byte, 0 at n == 0. */
int viz_utf8_decode(const char *s, int n, uint32_t *cp);

/* Encodes cp into out (4 bytes room); returns the length. */
int viz_utf8_encode(uint32_t cp, char *out);

/* Terminal columns taken by cp (0, 1 or 2; control characters count 0). */
int viz_cp_width(uint32_t cp);

/* Terminal columns taken by the UTF-8 string s. */
int viz_text_width(const char *s);

#endif
