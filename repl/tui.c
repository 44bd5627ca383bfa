/* tui.c - the ncurses REPL's entry point (the event loop lands in tui_*.c). */
#include <stdio.h>
#include <string.h>

#include "tui.h"

void tui_opts_default(tui_opts *o)
{
    memset(o, 0, sizeof *o);
}

int tui_option(int argc, char **argv, int *i, tui_opts *o)
{
    const char *a = argv[*i];
    if (strcmp(a, "--mono") == 0) { o->mono = true; return 1; }
    if (strcmp(a, "--no-mouse") == 0) { o->no_mouse = true; return 1; }
    const char *v = NULL;
    if (strcmp(a, "--theme") == 0) {
        if (*i + 1 >= argc) { fprintf(stderr, "attnscope: --theme needs a value: dark, light or projector\n"); return -1; }
        v = argv[++*i];
    } else if (strncmp(a, "--theme=", 8) == 0) {
        v = a + 8;
    } else {
        return 0;
    }
    if (strcmp(v, "dark") && strcmp(v, "light") && strcmp(v, "projector")) {
        fprintf(stderr, "attnscope: --theme must be dark, light or projector, got '%s'\n", v);
        return -1;
    }
    o->theme = v;
    return 1;
}

int tui_run(const tui_opts *o)
{
    (void)o;
    fprintf(stderr, "attnscope: the TUI is not built yet; use --plain\n");
    return 1;
}
