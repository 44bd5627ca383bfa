#!/bin/sh
# tok_speed.sh [TEXT] - encode throughput of attnscope's tokenizer (Llama 3
# tokenizer.json, one thread) on a large English text: by default the King James
# Bible (~4 MB), taken from .carry/data/kjv.txt or made with Debian's bible-kjv
# (installed when missing). Prints the JSON line of `attnscope tokenize --bench`.
#   usage: sh tools/tok_speed.sh [TEXT]     (repository root; builds first)
set -e
BIN=${ATTNSCOPE_BIN:-build/attnscope}
TOK=${ATTNSCOPE_CACHE:-.cache/tokenizers}
TEXT=${1:-}
if [ -z "$TEXT" ]; then
    if [ -f .carry/data/kjv.txt ]; then
        TEXT=.carry/data/kjv.txt
    else
        if ! command -v bible >/dev/null 2>&1; then
            if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
            DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends bible-kjv >/dev/null
        fi
        TEXT=${TMPDIR:-/tmp}/attnscope_kjv.txt
        # one verse per line, without the chapter headings and verse numbers
        bible -l100000 "Gen1:1-Rev22:21" | sed -n 's/^ *[0-9][0-9]* //p' > "$TEXT"
    fi
fi
[ -x "$BIN" ] || make --no-print-directory "$BIN" >/dev/null
sh tests/fetch_tokenizers.sh
"$BIN" tokenize --model "$TOK/llama3" --bench "$TEXT" --repeat "${REPEAT:-5}"
