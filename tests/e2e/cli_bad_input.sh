#!/bin/sh
# cli_bad_input.sh BUILD - bad command lines and bad REPL input: exit code 2 on
# the command line with exactly one clear line on stderr and nothing on stdout;
# in the REPL a message, and the session goes on.
BUILD=${1:-build}
BIN=${ATTNSCOPE_BIN:-$PWD/$BUILD/attnscope}
M=tests/fixtures/tiny-chat
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail=0

# expect2 PATTERN ARGS...: exit 2, one stderr line matching PATTERN, empty stdout.
expect2() {
    pat=$1; shift
    "$BIN" "$@" >"$T/out" 2>"$T/err" </dev/null; rc=$?
    lines=$(wc -l <"$T/err")
    if [ $rc -ne 2 ] || [ "$lines" -ne 1 ] || [ -s "$T/out" ] || ! grep -q -- "$pat" "$T/err"; then
        echo "FAIL: attnscope $* -> rc=$rc, stderr($lines lines): $(cat "$T/err")"; fail=1
    fi
}

expect2 "unknown option '--bogus'"           generate --model $M -p hi --bogus
expect2 "-n needs a value"                   generate --model $M -p hi -n
expect2 "--temp must be a number >= 0"       generate --model $M -p hi --temp -1
expect2 "--top-p must be in (0, 1]"          generate --model $M -p hi --top-p 1.5
expect2 "--top-k must be a whole number"     generate --model $M -p hi --top-k -1
expect2 "-n must be a whole number >= 1"     generate --model $M -p hi -n 0
expect2 "--min-p must be in"                 generate --model $M -p hi --min-p 2
expect2 "--repeat-penalty must be"           generate --model $M -p hi --repeat-penalty 0
expect2 "--seed must be"                     generate --model $M -p hi --seed -5
expect2 "-p TEXT is required"                generate --model $M
expect2 "no such model folder"               generate --model /nonexistent/model -p hi
expect2 "context holds 16"                   generate --model $M --ctx 16 -p "a prompt that is much longer than sixteen tokens of context"
expect2 "no CUDA backend\|not wired"         generate --model $M -p hi --device cuda
expect2 "--device must be cpu or cuda"       generate --model $M -p hi --device tpu
expect2 "unknown option '--frob'"            --plain --model $M --frob
expect2 "unknown command 'frobnicate'"       frobnicate
expect2 "--theme\|theme"                     --plain --model $M --theme neon
mkdir "$T/empty"
expect2 "config.json"                        generate --model "$T/empty" -p hi

# The REPL: every bad line gets a message and the lines after it still run.
printf '/frobnicate\n/temp -3\n/top-p 7\n/save %s/missing/x.json\n/cache sideways\n/save %s/ok.json\n/quit\n' "$T" "$T" |
    "$BIN" --model $M -n 3 >"$T/out" 2>"$T/err"; rc=$?
[ $rc -eq 0 ] || { echo "FAIL: REPL exit $rc"; fail=1; }
for pat in "unknown command /frobnicate" "/temp must be a number >= 0" "/top-p must be in (0, 1]" \
           "folder $T/missing does not exist" "usage: /cache on|off"; do
    grep -q -- "$pat" "$T/err" || { echo "FAIL: REPL did not say '$pat'"; cat "$T/err"; fail=1; }
done
[ -s "$T/ok.json" ] || { echo "FAIL: /save after the errors did not write"; fail=1; }
grep -q '"temp": 0.7' "$T/ok.json" || { echo "FAIL: a rejected /temp changed the setting"; fail=1; }

# A prompt longer than the context in the REPL: a message, and the next line works.
printf '%s\nhi\n' "this line is far too long to fit into a context of only forty-eight tokens, so the REPL must say so and keep going with the next line" |
    "$BIN" --model $M --ctx 48 -n 2 --temp 0 >"$T/out" 2>"$T/err"; rc=$?
[ $rc -eq 0 ] || { echo "FAIL: REPL exit $rc on a long prompt"; fail=1; }
grep -q "context holds 48" "$T/err" || { echo "FAIL: no context message"; cat "$T/err"; fail=1; }
[ "$(grep -c '^\[ prompt:' "$T/err")" -eq 1 ] || { echo "FAIL: the line after the long prompt did not run"; cat "$T/err"; fail=1; }
exit $fail
