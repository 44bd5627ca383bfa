/* commands.h - the subcommands of the attnscope binary; each returns the exit
 * code (0 success, 1 runtime failure, 2 bad usage or bad input). argv[0] is the
 * subcommand's name. */
#ifndef REPL_COMMANDS_H
#define REPL_COMMANDS_H

int cmd_repl(int argc, char **argv);      /* the TUI, or --plain */
int cmd_generate(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_template(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_greedy(int argc, char **argv);
int cmd_bench(int argc, char **argv);

#endif
