#!/bin/sh
# truncated_model.sh BUILD - a model file truncated while the REPL has it
# mapped: the next turn reads the vanished pages (SIGBUS) and attnscope must
# stop with status 1 and one line naming the file, not die silently.
BUILD=${1:-build}
BIN=${ATTNSCOPE_BIN:-$PWD/$BUILD/attnscope}
T=$(mktemp -d); trap 'exec 3>&-; rm -rf "$T"' EXIT
cp -r tests/fixtures/tiny-chat "$T/m"
mkfifo "$T/in"
"$BIN" --plain --model "$T/m" -n 3 --temp 0 <"$T/in" >"$T/out" 2>"$T/err" &
pid=$!
exec 3>"$T/in"
echo "Hello there" >&3
n=0; until grep -q '^\[ prompt:' "$T/err" || [ $n -ge 600 ]; do sleep 0.1; n=$((n + 1)); done
grep -q '^\[ prompt:' "$T/err" || { echo "FAIL: no first reply"; cat "$T/err"; kill "$pid"; exit 1; }
: > "$T/m/model.safetensors"          # truncate to 0 bytes underneath the mapping
echo "And now?" >&3
exec 3>&-
wait "$pid"; rc=$?
[ $rc -eq 1 ] || { echo "FAIL: exit $rc (expected 1)"; cat "$T/err"; exit 1; }
grep -q "model.safetensors changed or was truncated while in use" "$T/err" ||
    { echo "FAIL: no line naming the file"; cat "$T/err"; exit 1; }
exit 0
