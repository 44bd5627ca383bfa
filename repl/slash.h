/* slash.h - the slash-command table shared by the plain REPL and the TUI
 * ({name, usage, help, fn}), and the one validator of sampling settings that
 * the command line and the slash commands both use. */
#ifndef REPL_SLASH_H
#define REPL_SLASH_H

#include <stdbool.h>
#include <stddef.h>

#include "engine.h"

typedef enum {
    SLASH_OK = 0,        /* done (a message may have been said) */
    SLASH_ERROR,         /* bad usage or a failure: an error was said, nothing changed */
    SLASH_GENERATE,      /* a reply has begun (/regen): the caller drives conv_step */
    SLASH_QUIT,          /* /quit */
} slash_result;

typedef struct slash_ctx slash_ctx;

/* What a command may touch. The REPL (plain or TUI) fills it once; /model
 * replaces conv (the old one is closed) and then calls on_model. */
struct slash_ctx {
    conv_t *conv;                 /* the conversation; never NULL while commands run */
    const char *models_dir;       /* bundled models folder for /model NAME, or NULL */
    bool tui;                     /* the TUI is running: TUI-only commands use the hooks */
    /* Says one line (no trailing newline needed) to the user; error marks failures. */
    void (*say)(void *ud, bool error, const char *text);
    void *ud;
    /* Hooks the TUI fills; NULL means the command says it needs the TUI. Each
     * gets the argument text after the command name ("" when none). */
    slash_result (*step)(slash_ctx *ctx, const char *args);
    slash_result (*layer)(slash_ctx *ctx, const char *args);
    slash_result (*head)(slash_ctx *ctx, const char *args);
    slash_result (*compare)(slash_ctx *ctx, const char *args);
    slash_result (*help)(slash_ctx *ctx, const char *args);  /* TUI: open the help overlay */
    void (*on_model)(slash_ctx *ctx);   /* after /model switched ctx->conv */
};

typedef struct {
    const char *name;             /* without the slash: "temp" */
    const char *usage;            /* "/temp [T]" */
    const char *help;             /* one line */
    slash_result (*fn)(slash_ctx *ctx, const char *args);
    bool tui_only;                /* needs the TUI's panes (step, layer, head, compare) */
    bool live;                    /* allowed while a reply is being generated */
} slash_cmd;

/* The table, in /help order; *n receives its length. */
const slash_cmd *slash_table(int *n);

/* The command named name (no slash; exact match), or NULL. */
const slash_cmd *slash_find(const char *name);

/* True when line (after leading blanks) starts with '/': it is a command,
 * not a message to the model. */
bool slash_is_command(const char *line);

/* Runs one command line ("/temp 0.5"). An unknown command says
 * "unknown command /x; /help lists them" and returns SLASH_ERROR. While a reply
 * is being generated only settings that act at the next token are allowed;
 * the others say so. */
slash_result slash_exec(slash_ctx *ctx, const char *line);

/* Readline-style completion: the state-th command name (with its slash)
 * starting with prefix, or NULL; the string is static. */
const char *slash_complete(const char *prefix, int state);

/* ---- settings shared with the command line ------------------------------- */

/* Sets one sampling setting by name: "temp", "top-k", "top-p", "min-p",
 * "repeat-penalty", "seed". value must be a whole number in range (no trailing
 * junk): temp >= 0, top-k >= 0, 0 < top-p <= 1, 0 <= min-p <= 1,
 * repeat-penalty > 0, seed 0..2^64-1. Returns 0 and updates p, or -1 with a
 * one-line message in msg (e.g. "--top-p must be in (0, 1], got '1.5'" with
 * prefix "--"). prefix is how the setting is spelled to the user ("--" or "/"). */
int slash_set_sampling(sampler_params *p, const char *name, const char *value,
                       const char *prefix, char *msg, size_t cap);

/* Parses a whole decimal integer in [lo, hi]: 0 on success. */
int slash_parse_int(const char *s, long lo, long hi, long *out);

/* The suggested prompt of a model folder (a teaching model's task format), or
 * NULL: "prompt" in DIR/attnscope.json, else the text after "Suggested prompt:"
 * on a line of DIR/README.md. The caller frees it with free(). */
char *slash_model_hint(const char *dir);

/* Resolves /model's argument: an existing folder path as given, else
 * models_dir/NAME. Writes the folder into out; 0 when it exists, -1 with a
 * message in msg otherwise (listing the bundled names when it can). */
int slash_resolve_model(const char *models_dir, const char *arg, char *out, size_t cap,
                        char *msg, size_t msg_cap);

#endif
