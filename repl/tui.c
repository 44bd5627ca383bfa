/* tui.c - the ncurses REPL's entry point (the event loop lands in tui_*.c). */
#include <stdio.h>

#include "tui.h"

int tui_run(const tui_opts *o)
{
    (void)o;
    fprintf(stderr, "attnscope: the TUI is not built yet; use --plain\n");
    return 1;
}
