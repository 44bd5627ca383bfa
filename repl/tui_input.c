/* tui_input.c - readline's callback interface fed from curses keys. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <readline/readline.h>
#include <readline/history.h>

#include "tui_input.h"
#include "tui_term.h"

static unsigned char queue[256];
static int q_head, q_len;
static tui_line_fn line_fn;
static void *line_ud;
static FILE *devnull;
static char hist_path[1024];
static char *cont;          /* lines continued with a trailing backslash */
static char *view;          /* cont + the current line, for drawing */

static int rl_getc_cb(FILE *f)
{
    (void)f;
    if (q_len == 0) return EOF;
    int c = queue[q_head];
    q_head = (q_head + 1) % (int)sizeof queue;
    q_len--;
    return c;
}

static int rl_avail_cb(void) { return q_len > 0; }
static void rl_redisplay_cb(void) { /* the TUI draws the line itself */ }
static void rl_prep_cb(int meta) { (void)meta; }
static void rl_deprep_cb(void) {}

static void push_bytes(const char *s, int n)
{
    for (int i = 0; i < n && q_len < (int)sizeof queue; i++) {
        queue[(q_head + q_len) % (int)sizeof queue] = (unsigned char)s[i];
        q_len++;
    }
    while (q_len > 0) rl_callback_read_char();
}

static void on_line(char *line)
{
    if (!line) {
        if (cont) {            /* Ctrl-D after a continued line: submit what there is */
            char *all = cont;
            cont = NULL;
            line_fn(all, line_ud);
            return;
        }
        line_fn(NULL, line_ud);
        return;
    }
    size_t n = strlen(line);
    if (n > 0 && line[n - 1] == '\\') {
        line[n - 1] = '\0';
        size_t cl = cont ? strlen(cont) : 0;
        char *c = realloc(cont, cl + n + 2);
        if (c) {
            memcpy(c + cl, line, n - 1);
            c[cl + n - 1] = '\n';
            c[cl + n] = '\0';
            cont = c;
        }
        free(line);
        return;
    }
    if (cont) {
        size_t cl = strlen(cont);
        char *all = realloc(cont, cl + n + 1);
        if (!all) { free(line); return; }
        memcpy(all + cl, line, n + 1);
        cont = NULL;
        free(line);
        line = all;
    }
    line_fn(line, line_ud);
}

int tui_input_open(const char *history_path, tui_line_fn fn, void *ud)
{
    line_fn = fn;
    line_ud = ud;
    q_head = q_len = 0;
    devnull = fopen("/dev/null", "w");
    if (!devnull) return -1;
    rl_readline_name = "attnscope";
    rl_catch_signals = 0;
    rl_catch_sigwinch = 0;
    rl_change_environment = 0;
    rl_instream = stdin;
    rl_outstream = devnull;
    rl_getc_function = rl_getc_cb;
    rl_input_available_hook = rl_avail_cb;
    rl_redisplay_function = rl_redisplay_cb;
    rl_prep_term_function = rl_prep_cb;
    rl_deprep_term_function = rl_deprep_cb;
    rl_inhibit_completion = 1;   /* Tab is the TUI's (focus, slash-command completion) */
    if (history_path) {
        snprintf(hist_path, sizeof hist_path, "%s", history_path);
    } else {
        const char *home = getenv("HOME");
        snprintf(hist_path, sizeof hist_path, "%s/.attnscope_history", home ? home : ".");
    }
    using_history();
    read_history(hist_path);
    rl_callback_handler_install("", on_line);
    return 0;
}

void tui_input_close(void)
{
    rl_callback_handler_remove();
    free(cont); cont = NULL;
    free(view); view = NULL;
    if (devnull) { fclose(devnull); devnull = NULL; }
}

void tui_input_key(int key)
{
    const char *seq = NULL;
    switch (key) {
    case KEY_LEFT: seq = "\033[D"; break;
    case KEY_RIGHT: seq = "\033[C"; break;
    case KEY_UP: seq = "\033[A"; break;
    case KEY_DOWN: seq = "\033[B"; break;
    case KEY_HOME: seq = "\033[H"; break;
    case KEY_END: seq = "\033[F"; break;
    case KEY_DC: seq = "\033[3~"; break;
    case KEY_BACKSPACE: seq = "\177"; break;
    case KEY_ENTER: seq = "\r"; break;
    default: break;
    }
    if (seq) { push_bytes(seq, (int)strlen(seq)); return; }
    if (key >= 0 && key < 256) {
        char b = (char)key;
        push_bytes(&b, 1);
    }
}

void tui_input_insert(const char *text)
{
    rl_insert_text(text);
}

const char *tui_input_text(int *point)
{
    size_t cl = cont ? strlen(cont) : 0;
    size_t ll = rl_line_buffer ? strlen(rl_line_buffer) : 0;
    char *v = realloc(view, cl + ll + 1);
    if (!v) { if (point) *point = 0; return ""; }
    view = v;
    if (cl) memcpy(view, cont, cl);
    if (ll) memcpy(view + cl, rl_line_buffer, ll);
    view[cl + ll] = '\0';
    if (point) *point = (int)cl + (rl_point < (int)ll ? rl_point : (int)ll);
    return view;
}

bool tui_input_empty(void)
{
    return !cont && (!rl_line_buffer || !rl_line_buffer[0]);
}

void tui_input_set(const char *text)
{
    free(cont); cont = NULL;
    rl_replace_line(text, 0);
    rl_point = rl_end;
}

void tui_input_remember(const char *line)
{
    if (!line || !*line) return;
    add_history(line);
    if (append_history(1, hist_path) != 0) write_history(hist_path);
}
