/* tui_term.h - the one header that includes curses: opening and restoring the
 * terminal, colour-depth detection, copying a viz grid to the screen, keys. */
#ifndef REPL_TUI_TERM_H
#define REPL_TUI_TERM_H

#include <stdbool.h>

#ifndef NCURSES_WIDECHAR
#define NCURSES_WIDECHAR 1
#endif
#include <curses.h>

#include "color.h"
#include "grid.h"

/* Takes over the terminal (alternate screen, raw keys, keypad, mouse wheel
 * and left clicks unless no_mouse) and installs the restore paths: atexit and handlers for
 * SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGSEGV, SIGBUS, SIGABRT that call endwin
 * and re-raise. The colour depth is chosen from the terminal and the
 * environment: mono (--mono or NO_COLOR set) -> monochrome; else direct
 * colour when the terminfo has it, or when COLORTERM is truecolor/24bit and
 * an "xterm-direct" terminfo exists; else 256, 16, 8 colours or monochrome.
 * Returns 0, or -1 with a reason in why (the terminal is untouched then). */
int tui_term_open(bool mono, bool no_mouse, viz_depth *depth, char *why, size_t cap);

/* Restores the terminal; safe to call more than once. */
void tui_term_close(void);

/* The screen size in cells. */
void tui_term_size(int *w, int *h);

/* Copies g to the screen (colours already mapped to the depth), puts the
 * cursor at (cx, cy) (hidden when cx < 0) and refreshes. */
void tui_term_blit(const viz_grid *g, int cx, int cy);

/* Forces a full repaint at the next blit (after a resize). */
void tui_term_touch(void);

/* The next key within timeout_ms (0 = poll, -1 = wait): a byte, a KEY_*
 * code, or ERR. Mouse wheel events come back as TUI_WHEEL_UP/DOWN. */
#define TUI_WHEEL_UP (KEY_MAX + 1)
#define TUI_WHEEL_DOWN (KEY_MAX + 2)
#define TUI_CLICK (KEY_MAX + 3)
int tui_term_key(int timeout_ms);

/* Where the last TUI_CLICK (left button) happened, in cells. */
void tui_term_click_at(int *x, int *y);

#endif
