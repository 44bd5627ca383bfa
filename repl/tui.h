/* tui.h - the ncurses REPL: chat beside live attention, candidates and timings.
 * cmd_repl.c calls tui_run when stdin and stdout are terminals and --plain is
 * not given; everything curses- and readline-specific stays behind this header. */
#ifndef REPL_TUI_H
#define REPL_TUI_H

#include <stdbool.h>

#include "plain.h"

typedef struct {
    const char *model_dir;       /* the resolved model folder (cli_resolve_model) */
    const cli_common *common;    /* sampling, context, threads, cache, system, device */
    const char *models_dir;      /* bundled models folder for /model NAME, or NULL */
    const char *history_path;    /* readline history, NULL = $HOME/.attnscope_history (shared with --plain) */
    const char *theme;           /* --theme dark|light|projector; NULL = dark */
    bool mono;                   /* --mono: monochrome shade characters (NO_COLOR does the same) */
    bool no_mouse;               /* --no-mouse: leave the mouse to the terminal (copy/paste) */
} tui_opts;

/* Zeroes o (theme dark, colour, mouse on). */
void tui_opts_default(tui_opts *o);

/* Tries to consume argv[*i] (and its value) as a TUI option: --theme NAME
 * (or --theme=NAME), --mono, --no-mouse. Returns 1 when consumed (*i then
 * points at the last argv used), 0 when it is not a TUI option, -1 after
 * printing one line "attnscope: ..." on stderr for a missing or unknown value. */
int tui_option(int argc, char **argv, int *i, tui_opts *o);

/* Runs the TUI until /quit, Ctrl-D or a fatal signal, and restores the terminal
 * on every way out (atexit and SIGINT/SIGTERM/SIGHUP/SIGSEGV handlers call
 * endwin). Returns the exit code: 0 on a normal quit, 1 on a runtime failure
 * (terminal setup), 2 when the model folder cannot be loaded (one line on
 * stderr, printed before the screen is taken over). */
int tui_run(const tui_opts *o);

#endif
