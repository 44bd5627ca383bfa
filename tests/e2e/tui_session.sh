#!/bin/sh
# tui_session.sh BUILD - drives the real TUI ($BUILD/attnscope) inside tmux on
# the tiny chat fixture: start, ask a question, see a reply and a heatmap,
# /cache off in the status bar, step mode one token per key, resize to 80x24
# and back, the help overlay opening and closing, /quit exiting 0 with the
# terminal left sane; with 8 colours the borders drawn white. Every wait polls
# the screen and is capped; no fixed sleeps.
BUILD=${1:-build}
ROOT=$(pwd)
BIN="$ROOT/$BUILD/attnscope"
MODEL="$ROOT/tests/fixtures/tiny-chat"
[ -x "$BIN" ] || { echo "tui_session: $BIN missing"; exit 1; }
[ -f "$MODEL/config.json" ] || { echo "tui_session: $MODEL missing"; exit 1; }
command -v tmux >/dev/null 2>&1 || { echo "tui_session: tmux missing (make deps)"; exit 1; }

SOCK="attnscope-e2e-$$"
TMP=$(mktemp -d)
T() { tmux -L "$SOCK" -f /dev/null "$@"; }
cleanup() { T kill-server 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT INT TERM

screen() { T capture-pane -p -t e2e 2>/dev/null; }
fail() {
    echo "tui_session: FAILED: $1"
    echo "----- screen -----"; screen; echo "------------------"
    exit 1
}
# wait_for PATTERN [SECONDS]: polls the screen every 0.1 s until grep -E matches.
wait_for() {
    n=0; max=$(( ${2:-15} * 10 ))
    while [ $n -lt $max ]; do
        screen | grep -qE -- "$1" && return 0
        sleep 0.1; n=$((n + 1))
    done
    return 1
}
# wait_gone PATTERN [SECONDS]: until the pattern is no longer on the screen.
wait_gone() {
    n=0; max=$(( ${2:-15} * 10 ))
    while [ $n -lt $max ]; do
        screen | grep -qE -- "$1" || return 0
        sleep 0.1; n=$((n + 1))
    done
    return 1
}
status() { screen | tail -n 1; }

T new-session -d -s e2e -x 200 -y 50 \
    "env HOME='$TMP' TERM=tmux-256color COLORTERM= NO_COLOR= '$BIN' --model '$MODEL' -n 12 --seed 7; \
     echo \"EXIT=\$?\" > '$TMP/rc'; stty -a > '$TMP/stty' 2>&1; tput cnorm >/dev/null 2>&1; sleep 600" \
    || fail "tmux could not start"

# 1. start: the welcome line, the status bar with the model and the cache
wait_for "attnscope: tiny-chat" 30 || fail "no welcome line"
status | grep -q "tiny-chat" || fail "status bar lacks the model name"
status | grep -q "cache on" || fail "status bar lacks 'cache on'"

# 2. ask, see the user turn, a reply, and a heatmap with its cursor line
T send-keys -t e2e "What is attention?" Enter
wait_for "you .What is attention" 10 || fail "user turn not shown"
wait_for "llm ." 10 || fail "no model turn"
wait_gone "generating" 30 || fail "reply did not finish"
wait_for "q[0-9]+ .* = [01]\.[0-9]{3}" 5 || fail "heatmap cursor line missing"
screen | grep -qE "all 4 heads averaged .* [1-9][0-9]* tokens" || fail "attention pane has no tokens"
screen | grep -q "masked 0 " || fail "the legend does not show the masked cell"
# colours: half-block cells with 256-colour foreground and background escapes
T capture-pane -e -p -t e2e | grep -q "$(printf '\033')\[38;5;[0-9]*m.*▀" || \
    T capture-pane -e -p -t e2e | grep -q "38;5;[0-9]*;48;5;[0-9]*m▀" || fail "heatmap has no coloured half blocks"

# 3. /cache off shows in the status bar
T send-keys -t e2e "/cache off" Enter
wait_for "cache off \(from the next token\)" 5 || fail "/cache off not acknowledged"
status | grep -q "cache off" || fail "status bar does not say 'cache off'"

# 4. step mode: exactly one token per key press
T send-keys -t e2e "/step on" Enter
wait_for "step mode on" 5 || fail "/step on not acknowledged"
T send-keys -t e2e "Tell me more" Enter
wait_for "STEP 0 tok" 10 || fail "step mode did not wait for a key"
for i in 1 2 3; do
    T send-keys -t e2e n
    wait_for "STEP $i tok" 10 || fail "after $i key presses the status does not say STEP $i tok"
done
status | grep -q "STEP 3 tok" || fail "more than one token per key"
T send-keys -t e2e Space
wait_for "STEP 4 tok" 10 || fail "space did not step"
T send-keys -t e2e Escape
wait_for "stopped" 10 || fail "Esc did not stop the reply"
wait_gone "Esc stops" 5 || fail "still generating after Esc"

# 5. resize to 80x24: panes fold; tiny: the notice; back to 200x50: everything
T resize-window -t e2e -x 80 -y 24
wait_for "Attention  Candidates  Timings|Attention . Candidates . Timings" 10 || \
    wait_for "Candidates" 10 || fail "80x24 layout not drawn"
[ "$(screen | head -n 1 | wc -m)" -le 82 ] || fail "screen not 80 wide after resize"
# the help overlay at 80x24 does not fit: PgDn scrolls it to the commands
T send-keys -t e2e "?"
wait_for "Help . attnscope" 5 || fail "help overlay did not open at 80x24"
T send-keys -t e2e NPage NPage NPage NPage NPage NPage
wait_for "/quit" 5 || fail "PgDn did not scroll the help to its end"
T send-keys -t e2e Escape
wait_gone "Help . attnscope" 5 || fail "help overlay did not close at 80x24"
T resize-window -t e2e -x 50 -y 12
wait_for "too small: need 60x16" 10 || fail "no too-small notice at 50x12"
T resize-window -t e2e -x 200 -y 50
wait_for " Timings " 10 || fail "200x50 layout not back"
screen | grep -q " Candidates " || fail "candidates pane missing at 200x50"
screen | grep -q " Chat " || fail "chat pane missing at 200x50"

# 6. help overlay opens with ? on an empty line and closes with Esc
T send-keys -t e2e "?"
wait_for "Help . attnscope" 5 || fail "help overlay did not open"
screen | grep -q "/cache" || fail "help lacks the commands"
T send-keys -t e2e Escape
wait_gone "Help . attnscope" 5 || fail "help overlay did not close"
T send-keys -t e2e F1
wait_for "Help . attnscope" 5 || fail "F1 did not open help"
T send-keys -t e2e F1
wait_gone "Help . attnscope" 5 || fail "F1 did not close help"

# 7. /quit exits 0 and leaves the terminal sane (echo and canonical mode back)
T send-keys -t e2e "/quit" Enter
n=0; while [ ! -s "$TMP/rc" ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
[ -s "$TMP/rc" ] || fail "no exit after /quit"
grep -q "EXIT=0" "$TMP/rc" || fail "exit code: $(cat "$TMP/rc")"
n=0; while [ ! -s "$TMP/stty" ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
grep -qE "(^| )echo( |$)" "$TMP/stty" || fail "terminal left without echo: $(cat "$TMP/stty")"
grep -qE "(^| )icanon( |$)" "$TMP/stty" || fail "terminal left without icanon"
# 8. eight colours (TERM=xterm): the grey borders are drawn white, not black
#    (black text vanishes on a dark terminal)
T new-session -d -s e2e8 -x 100 -y 30 \
    "env HOME='$TMP' TERM=xterm COLORTERM= NO_COLOR= '$BIN' --model '$MODEL' -n 4; sleep 600" \
    || fail "tmux could not start the 8-colour session"
n=0; while ! T capture-pane -p -t e2e8 2>/dev/null | grep -q "attnscope: tiny-chat" && [ $n -lt 300 ]; do
    sleep 0.1; n=$((n + 1)); done
T capture-pane -e -p -t e2e8 > "$TMP/e8"
grep -q "attnscope: tiny-chat" "$TMP/e8" || fail "8-colour session did not start"
ESC=$(printf '\033')
grep -q "${ESC}\[37m[│─]" "$TMP/e8" || fail "8 colours: borders not drawn in white"
grep -q "${ESC}\[30m[│─]" "$TMP/e8" && fail "8 colours: borders drawn in black"
echo "tui_session: ok"
exit 0
