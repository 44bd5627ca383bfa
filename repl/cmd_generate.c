/* cmd_generate.c - `attnscope generate`: one prompt, the reply streamed to
 * stdout, llama.cpp-style timings on stderr. */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "plain.h"

static const char usage[] =
    "usage: attnscope generate [--model DIR] -p TEXT [options]\n"
    "\n"
    "Generates a reply to TEXT, streamed to stdout; timings go to stderr.\n"
    "\n"
    "  --model DIR, -m DIR     Hugging Face model folder (default: the bundled models/chat)\n"
    "  -p, --prompt TEXT       the prompt (required)\n"
    "  --chat                  wrap the prompt in the model's chat template (a user turn)\n"
    "  --system TEXT           system message (implies --chat)\n"
    "  -n, --n-predict N       at most N tokens, N >= 1 (default 512)\n"
    "  --temp T                temperature, >= 0; 0 = greedy (default 0.7)\n"
    "  --top-k K               keep the K most likely tokens, >= 0; 0 = off (default 50)\n"
    "  --top-p P               nucleus sampling mass, 0 < P <= 1; 1 = off (default 0.9)\n"
    "  --min-p P               drop tokens below P x the top probability, 0..1; 0 = off (default 0)\n"
    "  --repeat-penalty R      repetition penalty over the last 64 tokens, > 0; 1 = off (default 1.1)\n"
    "  --seed S                random seed, 0..2^64-1 (default 0)\n"
    "  --no-kv-cache           run without the KV cache (each token re-runs the whole sequence)\n"
    "  --ctx N                 context size in tokens (default: the model's, at most 4096)\n"
    "  --device cpu|cuda       compute device (default cpu; cuda needs a CUDA build)\n"
    "  --threads N, -t N       CPU threads (default: all cores)\n"
    "  -h, --help              this text\n"
    "\n"
    "Generation stops at an end-of-sequence or end-of-turn token, after N tokens, or\n"
    "when the context is full (said on stderr). Ctrl-C stops it and prints the timings.\n"
    "Exit status: 0 success, 1 runtime failure, 2 bad usage or bad input.\n";

static volatile sig_atomic_t stop_requested;

static void on_sigint(int sig)
{
    (void)sig;
    stop_requested = 1;
}

int cmd_generate(int argc, char **argv)
{
    cli_common o;
    cli_common_default(&o);
    const char *prompt = NULL;
    bool chat = false;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        int r = cli_common_option("generate", argc, argv, &i, &o);
        if (r < 0)
            return 2;
        if (r > 0)
            continue;
        if (strcmp(a, "-p") == 0 || strcmp(a, "--prompt") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "attnscope generate: %s needs a value (see --help)\n", a);
                return 2;
            }
            prompt = argv[++i];
        } else if (strncmp(a, "--prompt=", 9) == 0) {
            prompt = a + 9;
        } else if (strcmp(a, "--chat") == 0) {
            chat = true;
        } else {
            fprintf(stderr, "attnscope generate: unknown %s '%s' (see --help)\n",
                    a[0] == '-' ? "option" : "argument", a);
            return 2;
        }
    }
    if (!prompt) {
        fprintf(stderr, "attnscope generate: -p TEXT is required (see --help)\n");
        return 2;
    }
    if (o.system)
        chat = true;
    o.conv.chat = chat;
    if (cli_check_device("generate", o.device))
        return 2;

    char dir[PATH_MAX];
    if (cli_resolve_model("generate", &o, dir, sizeof dir))
        return 2;
    conv_t *c = NULL;
    int rc = cli_open_conv("generate", dir, &o, &c);
    if (rc)
        return rc;
    if (chat && !conv_chat(c))
        fprintf(stderr, "attnscope generate: warning: %s\n",
                conv_warning(c) ? conv_warning(c) : "no chat template: plain completion");

    eng_err err;
    rc = conv_begin(c, prompt, &err);
    if (rc != ENG_OK) {
        fprintf(stderr, "attnscope generate: %s\n", err.msg);
        conv_close(c);
        return rc == ENG_EINPUT || rc == ENG_ERANGE ? 2 : 1;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);

    int exit_code = 0;
    if (plain_stream_reply(c, &stop_requested, &err) != ENG_OK) {
        fprintf(stderr, "attnscope generate: %s\n", err.msg);
        exit_code = 1;
    }
    const conv_timings *t = conv_last_timings(c);
    if (t->stop == CONV_STOP_CONTEXT)
        fprintf(stderr, "attnscope generate: %s\n", conv_stop_message(c));
    plain_print_timings(stderr, c);
    conv_close(c);
    return exit_code;
}
