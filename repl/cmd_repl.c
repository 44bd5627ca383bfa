/* cmd_repl.c - `attnscope [--model DIR] [options]`: the TUI on a terminal, the
 * plain readline REPL with --plain or when stdin/stdout is not a terminal. */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "plain.h"
#include "tui.h"

static const char usage[] =
    "usage: attnscope [--model DIR] [options]        the chat REPL (TUI, or --plain)\n"
    "       attnscope generate --model DIR -p TEXT [options]\n"
    "       attnscope tokenize|template|logits|greedy|bench ...   (each has --help)\n"
    "\n"
    "  --model DIR, -m DIR     Hugging Face model folder (default: the bundled models/chat,\n"
    "                          found next to the executable or in $ATTNSCOPE_MODELS)\n"
    "  --plain                 readline REPL without ncurses (also used whenever stdin or\n"
    "                          stdout is not a terminal)\n"
    "  --system TEXT           system message\n"
    "  -n, --n-predict N       at most N tokens per reply, N >= 1 (default 512)\n"
    "  --temp T                temperature, >= 0; 0 = greedy (default 0.7)\n"
    "  --top-k K               keep the K most likely tokens, >= 0; 0 = off (default 50)\n"
    "  --top-p P               nucleus sampling mass, 0 < P <= 1; 1 = off (default 0.9)\n"
    "  --min-p P               drop tokens below P x the top probability, 0..1; 0 = off (default 0)\n"
    "  --repeat-penalty R      repetition penalty over the last 64 tokens, > 0; 1 = off (default 1.1)\n"
    "  --seed S                random seed, 0..2^64-1 (default 0)\n"
    "  --no-kv-cache           start with the KV cache off\n"
    "  --ctx N                 context size in tokens (default: the model's, at most 4096)\n"
    "  --device cpu|cuda       compute device (default cpu; cuda needs a CUDA build)\n"
    "  --threads N, -t N       CPU threads (default: all cores)\n"
    "  --history FILE          readline history (default ~/.attnscope_history)\n"
    "  --theme dark|light|projector   TUI colours (default dark)\n"
    "  --mono                  TUI in monochrome (also when NO_COLOR is set)\n"
    "  --no-mouse              do not capture the mouse in the TUI\n"
    "  -h, --help              this text\n"
    "\n"
    "Slash commands (type /help in the REPL):\n"
    "  /help [CMD]  /cache on|off  /temp T  /top-k K  /top-p P  /min-p P\n"
    "  /repeat-penalty R  /seed S  /regen  /reset  /system [TEXT]  /save FILE [--force]\n"
    "  /model NAME|DIR  /device cpu|cuda  /quit;  TUI only: /step  /layer N  /head N|avg  /compare\n"
    "Keys: Enter sends (a trailing \\ continues on the next line); Up/Down history;\n"
    "Tab completes commands; Ctrl-C (--plain) or Esc (TUI) stops a reply; Ctrl-D quits.\n"
    "The TUI's keys are listed by F1 or ? and in attnscope(1).\n"
    "Exit status: 0 success, 1 runtime failure, 2 bad usage or bad input.\n";

int cmd_repl(int argc, char **argv)
{
    cli_common o;
    cli_common_default(&o);
    tui_opts t;
    tui_opts_default(&t);
    bool plain = false;
    const char *history = NULL;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        int r = cli_common_option("", argc, argv, &i, &o);
        if (r < 0)
            return 2;
        if (r > 0)
            continue;
        r = tui_option(argc, argv, &i, &t);
        if (r < 0)
            return 2;
        if (r > 0)
            continue;
        if (strcmp(a, "--plain") == 0) {
            plain = true;
        } else if (strcmp(a, "--history") == 0 || strncmp(a, "--history=", 10) == 0) {
            history = a[9] == '=' ? a + 10 : (i + 1 < argc ? argv[++i] : NULL);
            if (!history) {
                fprintf(stderr, "attnscope: --history needs a value (see --help)\n");
                return 2;
            }
        } else if (a[0] == '-') {
            fprintf(stderr, "attnscope: unknown option '%s' (see --help)\n", a);
            return 2;
        } else {
            fprintf(stderr, "attnscope: unknown command '%s' (commands: generate, tokenize, template, "
                            "logits, greedy, bench; see --help)\n", a);
            return 2;
        }
    }
    if (cli_check_device("", o.device))
        return 2;
    char dir[PATH_MAX], models[PATH_MAX];
    if (cli_resolve_model("", &o, dir, sizeof dir))
        return 2;
    bool have_models = cli_models_dir(models, sizeof models) == 0;

    if (plain || !isatty(0) || !isatty(1))
        return plain_run(dir, &o, have_models ? models : NULL, history);

    t.model_dir = dir;
    t.common = &o;
    t.models_dir = have_models ? models : NULL;
    t.history_path = history;
    return tui_run(&t);
}
