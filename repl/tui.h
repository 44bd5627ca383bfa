/* tui.h - the ncurses REPL: chat beside live attention, candidates and timings.
 * cmd_repl.c calls tui_run when stdin and stdout are terminals and --plain is
 * not given; everything curses- and readline-specific stays behind this header. */
#ifndef REPL_TUI_H
#define REPL_TUI_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    const char *model_dir;     /* model folder (required) */
    const char *theme;         /* "dark" (NULL = dark), "light" or "projector" */
    bool mono;                 /* --mono: monochrome shade characters, no colour */
    bool no_mouse;             /* do not capture the mouse (keeps terminal copy/paste) */
    const char *device;        /* "cpu" (NULL = cpu) or "cuda" */
    int threads;               /* 0 = all cores */
    int max_seq;               /* context size in tokens, 0 = the model's (capped) */
    bool no_kv_cache;          /* start with the KV cache off */
    const char *system;        /* system prompt, NULL = none */
    const char *history_path;  /* readline history file, NULL = ~/.attnscope_history */
    /* Sampling; the same defaults as --plain apply when the caller copies them. */
    float temp;                /* 0 = greedy (argmax) */
    int top_k;                 /* 0 = off */
    float top_p;               /* 1 = off */
    float min_p;               /* 0 = off */
    float repeat_penalty;      /* 1 = off */
    uint64_t seed;
    int max_new;               /* tokens per reply, 0 = until end of turn or context */
} tui_opts;

/* Runs the TUI until /quit, Ctrl-D or a fatal signal, and restores the terminal
 * on every way out (atexit and SIGINT/SIGTERM/SIGSEGV handlers call endwin).
 * Returns the exit code: 0 on a normal quit, 1 on a runtime failure, 2 when the
 * model folder cannot be loaded (the one-line reason on stderr after endwin). */
int tui_run(const tui_opts *o);

#endif
