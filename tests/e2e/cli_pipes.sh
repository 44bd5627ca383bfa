#!/bin/sh
# cli_pipes.sh BUILD - the plain REPL through a pipe (stdin not a terminal):
# a two-turn chat whose second turn prefills only the new tokens, /regen that
# prefills nothing, /save, the bundled-model lookup and /model by name.
BUILD=${1:-build}
BIN=${ATTNSCOPE_BIN:-$PWD/$BUILD/attnscope}
M=tests/fixtures/tiny-chat
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail=0

printf 'Hello there\nTell me more\n/regen\n/save %s/c.json\n/quit\nnot reached\n' "$T" |
    "$BIN" --model $M -n 6 --temp 0 >"$T/out" 2>"$T/err"; rc=$?
[ $rc -eq 0 ] || { echo "FAIL: exit $rc"; cat "$T/err"; fail=1; }
n=$(grep -c '^\[ prompt:' "$T/err")
[ "$n" -eq 3 ] || { echo "FAIL: expected 3 replies, saw $n"; cat "$T/err"; fail=1; }
# "[ prompt: P tok (N new) ...": turn 2 runs fewer tokens than its prompt; /regen runs none.
sed -n 's/^\[ prompt: \([0-9]*\) tok (\([0-9]*\) new).*/\1 \2/p' "$T/err" >"$T/counts"
set -- $(sed -n 2p "$T/counts"); [ "$2" -lt "$1" ] || { echo "FAIL: turn 2 prefilled $2 of $1"; fail=1; }
set -- $(sed -n 3p "$T/counts"); [ "$2" -eq 0 ] || { echo "FAIL: /regen prefilled $2"; fail=1; }
[ -s "$T/c.json" ] || { echo "FAIL: /save wrote nothing"; fail=1; }
# One message and one reply's timings per line (conv_save's layout).
roles=$(sed -n 's/^ *{"role": "\([a-z]*\)".*/\1/p' "$T/c.json" | tr '\n' ' ')
[ "$roles" = "user assistant user assistant " ] || { echo "FAIL: saved roles: $roles"; fail=1; }
[ "$(grep -c '"prefill_tokens"' "$T/c.json")" -eq 3 ] || { echo "FAIL: saved timings"; fail=1; }
grep '"prefill_tokens"' "$T/c.json" | sed -n 3p | grep -q '"prefill_tokens": 0,' ||
    { echo "FAIL: /regen's saved timings"; fail=1; }
grep -q '"temp": 0,' "$T/c.json" || { echo "FAIL: saved JSON"; fail=1; }

# A trailing backslash continues the message on the next line.
printf 'line one\\\nline two\n/save %s/m.json\n' "$T" | "$BIN" --model $M -n 2 >/dev/null 2>"$T/err" ||
    { echo "FAIL: multi-line input"; cat "$T/err"; fail=1; }
grep -q '"content": "line one\\nline two"' "$T/m.json" || { echo "FAIL: multi-line message"; cat "$T/m.json"; fail=1; }

# The default model: ATTNSCOPE_MODELS/chat; /model NAME switches among bundled ones.
mkdir "$T/models"; ln -s "$PWD/$M" "$T/models/chat"; ln -s "$PWD/$M" "$T/models/other"
printf '/model other\n/model nope\nHi\n' | ATTNSCOPE_MODELS="$T/models" "$BIN" -n 2 >"$T/out" 2>"$T/err"; rc=$?
[ $rc -eq 0 ] || { echo "FAIL: default model exit $rc"; cat "$T/err"; fail=1; }
grep -q "model $T/models/other loaded" "$T/err" || { echo "FAIL: /model other"; cat "$T/err"; fail=1; }
grep -q "no bundled model 'nope'" "$T/err" || { echo "FAIL: /model nope"; fail=1; }
ATTNSCOPE_MODELS="$T/none" "$BIN" --plain </dev/null >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 2 ] && grep -q "bundled model .* is missing" "$T/err" || { echo "FAIL: missing default model rc=$rc"; cat "$T/err"; fail=1; }
exit $fail
