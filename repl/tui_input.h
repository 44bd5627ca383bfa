/* tui_input.h - GNU readline inside the curses event loop, through its
 * callback interface: we feed it the keys, it edits the line and keeps the
 * history (shared with --plain), and we draw the line ourselves. */
#ifndef REPL_TUI_INPUT_H
#define REPL_TUI_INPUT_H

#include <stdbool.h>
#include <stddef.h>

/* Called with each accepted line (malloc'd; the callee frees it) or NULL at
 * end of input (Ctrl-D on an empty line). A line ending in a backslash is
 * not passed on: the backslash becomes a newline and editing continues. */
typedef void (*tui_line_fn)(char *line, void *ud);

/* Installs the readline callback handler and reads history_path (NULL =
 * $HOME/.attnscope_history). Returns 0, or -1 when readline cannot start. */
int tui_input_open(const char *history_path, tui_line_fn fn, void *ud);
void tui_input_close(void);

/* Feeds one curses key (a byte or a KEY_* code: arrows, Home, End, Delete,
 * Backspace are turned into the sequences readline binds). */
void tui_input_key(int key);

/* Inserts text at the cursor (Alt-Enter inserts "\n"). */
void tui_input_insert(const char *text);

/* The line being edited (including earlier backslash-continued lines, joined
 * with "\n"), and the cursor's byte offset into it. */
const char *tui_input_text(int *point);
bool tui_input_empty(void);

/* Replaces the line being edited (cursor at the end); "" clears it. */
void tui_input_set(const char *text);

/* Adds line to the history and appends it to the history file. */
void tui_input_remember(const char *line);

#endif
