/* main.c - attnscope's entry point: dispatches to a subcommand, or opens the REPL. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "fault.h"

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
} subcommands[] = {
    {"generate", cmd_generate},
    {"tokenize", cmd_tokenize},
    {"template", cmd_template},
    {"logits", cmd_logits},
    {"greedy", cmd_greedy},
    {"bench", cmd_bench},
};

int main(int argc, char **argv)
{
    fault_install();   /* a model file truncated while mapped: one line, exit 1 */
    if (argc > 1) {
        for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
            if (strcmp(argv[1], subcommands[i].name) == 0)
                return subcommands[i].fn(argc - 1, argv + 1);
    }
    return cmd_repl(argc, argv);
}
