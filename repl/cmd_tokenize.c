/* cmd_tokenize.c - TEMPORARY placeholder until the subcommand lands (replace this file). */
#include <stdio.h>
#include "commands.h"

int cmd_tokenize(int argc, char **argv)
{
    (void)argc;
    fprintf(stderr, "attnscope: '%s' is not built yet\n", argv[0]);
    return 1;
}
