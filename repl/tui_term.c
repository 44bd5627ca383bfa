/* tui_term.c - curses setup and teardown, colour depth, grid -> screen. */
#include <locale.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tui_term.h"
#include <term.h>
#include "fault.h"

static volatile sig_atomic_t active;
static SCREEN *screen;
static bool direct;        /* colour numbers are 24-bit RGB */
static bool mouse_on;
static viz_depth cur_depth;
static int click_x, click_y;

void tui_term_close(void)
{
    if (!active) return;
    active = 0;
    if (mouse_on) mousemask(0, NULL);
    curs_set(1);
    endwin();
}

static void on_fatal(int sig)
{
    tui_term_close();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void at_exit(void) { tui_term_close(); }

static bool env_set(const char *name)
{
    const char *v = getenv(name);
    return v && *v;
}

int tui_term_open(bool mono, bool no_mouse, viz_depth *depth, char *why, size_t cap)
{
    setlocale(LC_ALL, "");
    if (!isatty(0) || !isatty(1)) {
        snprintf(why, cap, "the TUI needs a terminal on stdin and stdout (use --plain)");
        return -1;
    }
    const char *ct = getenv("COLORTERM");
    bool want_tc = ct && (strcmp(ct, "truecolor") == 0 || strcmp(ct, "24bit") == 0);
    const char *term = getenv("TERM");
    screen = NULL;
    direct = false;
    if (want_tc && !mono && !env_set("NO_COLOR")) {
        /* Keep the terminal's own terminfo when it already has direct colour. */
        int err = 0;
        if (term && setupterm(term, 1, &err) == OK && tigetnum("colors") < 0x1000000) {
            if (setupterm("xterm-direct", 1, &err) == OK)
                screen = newterm("xterm-direct", stdout, stdin);
        }
    }
    if (!screen) screen = newterm(term, stdout, stdin);
    if (!screen) {
        snprintf(why, cap, "cannot open the terminal '%s' with curses", term ? term : "(TERM unset)");
        return -1;
    }
    set_term(screen);
    active = 1;
    atexit(at_exit);
    /* SIGBUS stays with fault.c (a model file truncated under its mapping):
     * it restores the terminal through the cleanup hook, then names the file. */
    fault_set_cleanup(tui_term_close);
    int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGSEGV, SIGABRT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) signal(sigs[i], on_fatal);

    raw();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    set_escdelay(25);
    mouse_on = false;
    if (!no_mouse) {
        mousemask(BUTTON1_PRESSED | BUTTON4_PRESSED | BUTTON5_PRESSED, NULL);
        mouseinterval(0);
        mouse_on = true;
    }

    viz_depth d = VIZ_MONO;
    if (!mono && !env_set("NO_COLOR") && has_colors()) {
        start_color();
        use_default_colors();
        if (COLORS >= 0x1000000) { d = VIZ_TRUECOLOR; direct = true; }
        else if (COLORS >= 256) d = VIZ_256;
        else if (COLORS >= 16) d = VIZ_16;
        else if (COLORS >= 8) d = VIZ_8;
    }
    cur_depth = d;
    *depth = d;
    return 0;
}

void tui_term_size(int *w, int *h)
{
    getmaxyx(stdscr, *h, *w);
}

void tui_term_touch(void)
{
    clearok(curscr, TRUE);
}

static int curses_color(viz_color c)
{
    if (c == VIZ_DEFAULT) return -1;
    if (VIZ_IS_RGB(c)) {
        int rgb = c & 0xffffff;
        if (direct) return rgb < 8 ? 8 : rgb;   /* 0..7 are the ANSI colours in direct mode */
        return viz_rgb_to_256(VIZ_R(c), VIZ_G(c), VIZ_B(c));
    }
    return c;
}

void tui_term_blit(const viz_grid *g, int cx, int cy)
{
    viz_color last_fg = VIZ_DEFAULT, last_bg = VIZ_DEFAULT;
    int last_pair = 0;
    for (int y = 0; y < g->h; y++) {
        for (int x = 0; x < g->w; x++) {
            const viz_cell *c = &g->cells[(size_t)y * g->w + x];
            if (c->ch == 0) continue;
            attr_t a = A_NORMAL;
            if (c->attr & VIZ_BOLD) a |= A_BOLD;
            if (c->attr & VIZ_REVERSE) a |= A_REVERSE;
            if (c->attr & VIZ_DIM) a |= A_DIM;
            if (c->attr & VIZ_UNDERLINE) a |= A_UNDERLINE;
            int pair = 0;
            if (cur_depth != VIZ_MONO && (c->fg != VIZ_DEFAULT || c->bg != VIZ_DEFAULT)) {
                if (c->fg != last_fg || c->bg != last_bg) {   /* runs of one colour pair are common */
                    last_pair = alloc_pair(curses_color(c->fg), curses_color(c->bg));
                    if (last_pair < 0) last_pair = 0;
                    last_fg = c->fg;
                    last_bg = c->bg;
                }
                pair = last_pair;
            }
            wchar_t wc[2] = {(wchar_t)c->ch, 0};
            cchar_t cc;
            setcchar(&cc, wc, a, 0, &pair);
            if (y == g->h - 1 && x == g->w - 1) {
                /* the bottom-right cell: insert so the screen does not scroll */
                mvins_wch(y, x, &cc);
            } else {
                mvadd_wch(y, x, &cc);
            }
        }
    }
    if (cx >= 0 && cy >= 0) {
        move(cy, cx);
        curs_set(1);
    } else {
        curs_set(0);
    }
    refresh();
}

int tui_term_key(int timeout_ms)
{
    timeout(timeout_ms);
    int k = getch();
    if (k == KEY_MOUSE) {
        MEVENT ev;
        if (getmouse(&ev) == OK) {
            if (ev.bstate & BUTTON4_PRESSED) return TUI_WHEEL_UP;
            if (ev.bstate & BUTTON5_PRESSED) return TUI_WHEEL_DOWN;
            if (ev.bstate & BUTTON1_PRESSED) {
                click_x = ev.x;
                click_y = ev.y;
                return TUI_CLICK;
            }
        }
        return ERR;
    }
    return k;
}

void tui_term_click_at(int *x, int *y)
{
    *x = click_x;
    *y = click_y;
}
