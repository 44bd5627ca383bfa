#!/bin/sh
# cli_interrupt.sh BUILD - the plain REPL on a terminal (tmux): Ctrl-C stops a
# long reply without quitting, Ctrl-C at the prompt clears the half-typed line,
# the history lands in $HOME/.attnscope_history, and Ctrl-D quits with status 0.
# Every wait polls the screen and gives up after ten seconds.
BUILD=${1:-build}
BIN=${ATTNSCOPE_BIN:-$PWD/$BUILD/attnscope}
M=$PWD/tests/fixtures/tiny-chat
command -v tmux >/dev/null || { echo "cli_interrupt: tmux is missing (make deps)"; exit 1; }
T=$(mktemp -d)
S=attnscope-cli-$$
trap 'tmux kill-session -t $S 2>/dev/null; rm -rf "$T"' EXIT
fail=0

# wait_for PATTERN: polls the pane (up to 10 s) until PATTERN shows.
wait_for() {
    i=0
    while [ $i -lt 100 ]; do
        tmux capture-pane -p -t $S -S -200 2>/dev/null | grep -q -- "$1" && return 0
        sleep 0.1; i=$((i + 1))
    done
    echo "FAIL: timed out waiting for '$1'"; tmux capture-pane -p -t $S -S -40 | grep -v '^$' | tail -15
    fail=1; return 1
}

# The cache off and a long -n make the reply slow enough to interrupt.
tmux new-session -d -s $S -x 200 -y 40 \
    "HOME='$T' '$BIN' --plain --model '$M' --ctx 4096 --no-kv-cache -n 4000 --temp 0; echo EXIT=\$?; sleep 30"
wait_for "Ctrl-D quits" || exit 1
tmux send-keys -t $S "Hello there" Enter
wait_for "^> Hello there$"
sleep 0.5
tmux send-keys -t $S C-c
wait_for "^\[stopped\]"
wait_for "generation: .* cache off \]"
# Ctrl-C at the prompt drops the half-typed line: "/temp" alone runs next.
tmux send-keys -t $S "abc"
wait_for "^> abc"
tmux send-keys -t $S C-c
wait_for "^> abc^C$"
tmux send-keys -t $S "/temp" Enter
wait_for "^temp 0$"
# The dropped line is in the history: Up Up brings it back.
tmux send-keys -t $S Up Up
wait_for "^> abc$"
tmux send-keys -t $S C-u
tmux send-keys -t $S C-d
wait_for "EXIT=0"
grep -q "^Hello there$" "$T/.attnscope_history" 2>/dev/null || { echo "FAIL: history not written"; fail=1; }
grep -q "^/temp$" "$T/.attnscope_history" 2>/dev/null || { echo "FAIL: /temp not in the history"; fail=1; }
grep -q "^abc$" "$T/.attnscope_history" 2>/dev/null || { echo "FAIL: the line dropped by Ctrl-C is not in the history"; fail=1; }
exit $fail
