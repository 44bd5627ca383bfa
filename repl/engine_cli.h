/* engine_cli.h - what the engine-facing subcommands (logits, greedy, bench,
 * tokenize, template) share: parsing ids and numbers, --device, reading a
 * whole file, opening a model folder or a synthetic model, and mapping engine
 * statuses to exit codes. Every function
 * that fails prints one line "attnscope CMD: ..." on stderr. */
#ifndef REPL_ENGINE_CLI_H
#define REPL_ENGINE_CLI_H

#include "engine.h"

/* Prints "attnscope CMD: " and the printf-style message as one line on
 * stderr; returns 2 (the bad-usage / bad-input exit code). */
int ecli_bad(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* 2 for ENG_EINPUT (bad input), 1 for everything else that failed, 0 for OK. */
int ecli_exit_code(int status);

/* An integer in [lo, hi] from flag's value; 0, or -1 after the message. */
int ecli_parse_int(const char *cmd, const char *flag, const char *val, long lo, long hi, int *out);

/* "1,2,3" -> malloc'd ids (free with free); 0, or -1 after the message. */
int ecli_parse_ids(const char *cmd, const char *val, int **ids, int *n);

/* "bf16" | "f16" | "f32"; 0, or -1 after the message. */
int ecli_parse_dtype(const char *cmd, const char *val, eng_dtype *out);

/* "cpu" is fine; "cuda" is refused unless this is a CUDA build (make CUDA=1),
 * where session_set_device checks for a GPU; anything else is unknown.
 * 0, or -1 after the message. */
int ecli_check_device(const char *cmd, const char *device);

/* The checks after the options that logits and greedy share: --dtype (given
 * when have_dtype) applies to --synthetic models only, and --device as
 * ecli_check_device has it. 0, or -1 after the message. */
int ecli_check_source(const char *cmd, bool have_dtype, const char *synth, const char *device);

/* A session of ctx positions on m with threads workers, moved to device
 * when device is not NULL (session_set_device); *s is freed by the caller
 * (session_free) whatever the result. Returns the engine status, message in
 * *e; prints nothing. */
int ecli_new_session(session_t **s, const model_t *m, int ctx, int threads, const char *device, eng_err *e);

/* Opens --model DIR (dir) or --synthetic NAME (synth, weights of dtype);
 * returns the exit code (0 on success) after printing the engine's message. */
int ecli_open_model(const char *cmd, const char *dir, const char *synth, eng_dtype dtype, model_t **out);

/* Value of the option at argv[*i] ("--opt V" or "--opt=V"): NULL when
 * argv[*i] is not `name`; prints a message and sets *missing when the value
 * is absent. Advances *i past a separate value. */
const char *ecli_opt(const char *cmd, int argc, char **argv, int *i, const char *name, int *missing);

/* The whole file at path as a malloc'd, NUL-terminated buffer (free with
 * free); its length without the NUL in *len when len is not NULL. NULL when
 * the file cannot be opened or memory runs out; prints nothing. */
char *ecli_slurp(const char *path, size_t *len);

#endif
