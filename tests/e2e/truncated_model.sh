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

# The same inside the TUI: the terminal is restored first, then the line.
command -v tmux >/dev/null 2>&1 || { echo "FAIL: tmux missing"; exit 1; }
cp -r tests/fixtures/tiny-chat "$T/t"
S="attnscope-trunc-$$"
tmux -L "$S" -f /dev/null new-session -d -x 120 -y 40 \
    "'$BIN' --model '$T/t' -n 3 --temp 0; echo EXIT=\$? > '$T/tui_rc'; sleep 60"
wait_for() { # wait_for PATTERN: poll the screen, at most 30 s
    n=0; until tmux -L "$S" capture-pane -p | grep -q "$1" || [ $n -ge 300 ]; do sleep 0.1; n=$((n + 1)); done
    tmux -L "$S" capture-pane -p | grep -q "$1"
}
wait_for "F1 or ? for help" || { echo "FAIL: TUI did not start"; tmux -L "$S" kill-server; exit 1; }
tmux -L "$S" send-keys "Hello" Enter
wait_for "reply cut at the limit" || { echo "FAIL: no first reply in the TUI"; tmux -L "$S" kill-server; exit 1; }
: > "$T/t/model.safetensors"
tmux -L "$S" send-keys "again" Enter
n=0; until [ -s "$T/tui_rc" ] || [ $n -ge 300 ]; do sleep 0.1; n=$((n + 1)); done
screen=$(tmux -L "$S" capture-pane -p -J)
tmux -L "$S" kill-server
grep -q "EXIT=1" "$T/tui_rc" 2>/dev/null || { echo "FAIL: TUI exit $(cat "$T/tui_rc" 2>/dev/null)"; exit 1; }
echo "$screen" | grep -q "model.safetensors changed or was truncated while in use" ||
    { echo "FAIL: the TUI did not name the file on a restored screen"; echo "$screen"; exit 1; }
exit 0
