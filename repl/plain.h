/* plain.h - the plain REPL (readline, no ncurses) and what it shares with
 * `attnscope generate`: the common command-line options, the default model
 * folder and llama.cpp-style timing lines. */
#ifndef REPL_PLAIN_H
#define REPL_PLAIN_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

#include "engine.h"

/* Options common to `attnscope` (REPL) and `attnscope generate`. */
typedef struct {
    const char *model_dir;     /* --model DIR; NULL = the bundled default */
    const char *system;        /* --system TEXT */
    const char *device;        /* --device cpu|cuda; NULL = cpu */
    conv_opts conv;            /* -n, --ctx, --threads, --no-kv-cache, sampling */
} cli_common;

void cli_common_default(cli_common *o);

/* Tries to consume argv[*i] (and its value) as one of the common options:
 * --model, --system, --device, -n, --ctx, --threads, --no-kv-cache, --temp,
 * --top-k, --top-p, --min-p, --repeat-penalty, --seed ("--opt V" or
 * "--opt=V"). Returns 1 when consumed (*i then points at the last argv
 * used), 0 when argv[*i] is not a common option, -1 after printing one line
 * "attnscope CMD: ..." on stderr for a missing or out-of-range value. */
int cli_common_option(const char *cmd, int argc, char **argv, int *i, cli_common *o);

/* Checks --device: "cpu" is fine; "cuda" says why it is not available in
 * this build. Returns 0, or -1 after printing one line on stderr. */
int cli_check_device(const char *cmd, const char *device);

/* The bundled models folder: $ATTNSCOPE_MODELS, else ../models next to the
 * executable (build/attnscope -> models/). Writes it into out; returns 0 when
 * that folder exists, -1 otherwise (out still holds where it looked). */
int cli_models_dir(char *out, size_t cap);

/* Resolves o->model_dir to a folder (the bundled models/chat when NULL) in
 * out; 0 on success, -1 after printing one clear line on stderr. */
int cli_resolve_model(const char *cmd, const cli_common *o, char *out, size_t cap);

/* Opens the conversation for a resolved folder on o->device; prints one line
 * on stderr and returns the exit code (2 bad folder, 1 other failure) on
 * error, 0 on success. For the REPL (cmd "" or "attnscope") a device that
 * cannot be used is a warning and the CPU is used instead; for generate it is
 * a failure (exit 1). */
int cli_open_conv(const char *cmd, const char *dir, const cli_common *o, conv_t **out);

/* llama.cpp's lines after a reply: prompt eval, eval, time to first token
 * and latency percentiles, total; to f. */
void plain_print_timings(FILE *f, const conv_t *c);

/* One compact line after a REPL reply:
 * "[ prompt: 25 tok (12 new) 2025.9 t/s | generation: 31 tok 310.0 t/s | ttft 15.0 ms | cache on ]". */
void plain_print_summary(FILE *f, const conv_t *c);

/* Drives conv_step until the reply ends or *stop is set (then the reply is
 * stopped), streaming each token's text to stdout and ending with a newline
 * when the text did not. Returns ENG_OK, or conv_step's status with its
 * message in *err (the caller reports it). */
int plain_stream_reply(conv_t *c, volatile sig_atomic_t *stop, eng_err *err);

/* The plain REPL on folder dir; models_dir is for /model NAME (may be NULL).
 * history_path NULL = $HOME/.attnscope_history. Returns the exit code. */
int plain_run(const char *dir, const cli_common *o, const char *models_dir, const char *history_path);

#endif
