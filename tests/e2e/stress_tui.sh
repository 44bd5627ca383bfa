#!/bin/sh
# stress_tui.sh BUILD - sends STRESS_KEYS random keys (default 400; `make
# stress` sends 10,000) and a random resize every ~50 keys to the real TUI on
# the tiny-chat fixture inside a private tmux server: printable ASCII and
# UTF-8, Enter (so replies start and stop), Esc, Tab, arrows, paging, function
# keys, Ctrl-keys (raw mode: none of them is a signal), the help overlay, the
# pane keys, and safe slash commands. Ctrl-D and /quit, /save, /model are left
# out. The TUI must stay alive throughout, draw its status bar again at 120x40,
# exit 0 on /quit, and leave the terminal sane. First a conversation longer
# than its 96-token context must end with a clear message (then the random
# keys run into that limit again and again). STRESS_SEED picks the sequence.
BUILD=${1:-build}
KEYS=${STRESS_KEYS:-400}
SEED=${STRESS_SEED:-1}
ROOT=$(pwd)
BIN="$ROOT/$BUILD/attnscope"
MODEL="$ROOT/tests/fixtures/tiny-chat"
[ -x "$BIN" ] || { echo "stress_tui: $BIN missing"; exit 1; }
command -v tmux >/dev/null 2>&1 || { echo "stress_tui: tmux missing (make deps)"; exit 1; }

SOCK="attnscope-stress-$$"
TMP=$(mktemp -d)
T() { tmux -L "$SOCK" -f /dev/null "$@"; }
cleanup() { T kill-server 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT INT TERM
screen() { T capture-pane -p -t st 2>/dev/null; }
fail() {
    echo "stress_tui: FAILED: $1 (seed $SEED)"
    echo "----- last keys -----"; tail -n 3 "$TMP/sent" 2>/dev/null
    echo "----- screen -----"; screen; echo "------------------"
    exit 1
}
wait_for() {
    n=0; max=$(( ${2:-15} * 10 ))
    while [ $n -lt $max ]; do
        screen | grep -qE -- "$1" && return 0
        sleep 0.1; n=$((n + 1))
    done
    return 1
}

T new-session -d -s st -x 120 -y 40 \
    "env HOME='$TMP' TERM=tmux-256color COLORTERM= NO_COLOR= ${STRESS_WRAP:-} '$BIN' --model '$MODEL' --ctx 96 -n 6 --seed 3; \
     echo \"EXIT=\$?\" > '$TMP/rc'; stty -a > '$TMP/stty' 2>&1; sleep 600" \
    || fail "tmux could not start"
wait_for "attnscope: tiny-chat" 60 || fail "TUI did not start"

# A conversation longer than the context (96 tokens) ends with a clear message.
i=0
while [ $i -lt 12 ] && ! screen | grep -qE "context full|context holds"; do
    T send-keys -t st -l "Tell me everything about attention heads and tokens"
    T send-keys -t st Enter
    sleep 0.3; i=$((i + 1))
done
wait_for "context full|context holds" 10 || fail "no message when the context ran out"
T send-keys -t st -l "/reset"
T send-keys -t st Enter

# One batch per line: "K key key ..." (tmux key names), "L text" (literal),
# or "R WxH" (resize). awk's rand with a fixed seed makes the run repeatable.
awk -v n="$KEYS" -v seed="$SEED" 'BEGIN {
    srand(seed)
    split("Enter Escape Tab BTab Up Down Left Right Home End PPage NPage Space BSpace DC IC " \
          "F1 F2 F3 F5 F10 F12 C-a C-b C-c C-e C-f C-k C-l C-n C-p C-r C-u C-w C-y C-z C-\\ " \
          "M-b M-f M-x [ ] { } a g s t n q ?", named, " ")
    split("hello|Why?|é漢字|x y z|12345|\\n|  |<|im_end|>|ð|a\tb", lit, "|")
    split("/help|/help temp|/cache off|/cache on|/temp 0|/temp 1.5|/top-k 3|/top-p 0.5|" \
          "/min-p 0.2|/seed 9|/regen|/reset|/system be brief|/system|/step on|/step off|" \
          "/layer 1|/layer 7|/head 2|/head avg|/compare|/device|/nope|/temp x", cmd, "|")
    nn = length(named); nl = length(lit); nc = length(cmd)
    sent = 0
    while (sent < n) {
        r = rand()
        if (r < 0.02) { printf "R %dx%d\n", 20 + int(rand() * 200), 5 + int(rand() * 60); continue }
        if (r < 0.10) { printf "L %s\n", cmd[1 + int(rand() * nc)]; printf "K Enter\n"; sent += 2; continue }
        if (r < 0.25) { printf "L %s\n", lit[1 + int(rand() * nl)]; sent++; continue }
        k = 1 + int(rand() * 8); line = "K"
        for (i = 0; i < k; i++) line = line " " named[1 + int(rand() * nn)]
        print line; sent += k
    }
}' > "$TMP/plan"

set -f          # keys like ? and [ are not file patterns
i=0
while IFS= read -r line; do
    kind=${line%% *}; arg=${line#* }
    echo "$line" >> "$TMP/sent"
    case $kind in
        R) T resize-window -t st -x "${arg%x*}" -y "${arg#*x}" ;;
        L) T send-keys -t st -l -- "$arg" ;;
        # shellcheck disable=SC2086
        K) T send-keys -t st $arg ;;
    esac
    i=$((i + 1))
    if [ $((i % 20)) -eq 0 ]; then
        [ -s "$TMP/rc" ] && fail "the TUI ended during the run: $(cat "$TMP/rc")"
        sleep 0.05
    fi
done < "$TMP/plan"
sleep 0.5
[ -s "$TMP/rc" ] && fail "the TUI ended during the run: $(cat "$TMP/rc")"

# Back to a normal size and a quiet state: the status bar must be drawn again.
T resize-window -t st -x 120 -y 40
T send-keys -t st Escape Escape C-c
sleep 0.3
T send-keys -t st Escape C-c
wait_for "tiny-chat" 20 || fail "no status bar after the run"
T send-keys -t st C-a C-k           # an empty input line (readline keys)
wait_for "type a message" 10 || fail "the input line could not be emptied"
T send-keys -t st -l "/quit"
T send-keys -t st Enter
n=0; while [ ! -s "$TMP/rc" ] && [ $n -lt 200 ]; do sleep 0.1; n=$((n + 1)); done
[ -s "$TMP/rc" ] || fail "no exit after /quit"
grep -q "EXIT=0" "$TMP/rc" || fail "exit code: $(cat "$TMP/rc")"
n=0; while [ ! -s "$TMP/stty" ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
grep -qE "(^| )echo( |$)" "$TMP/stty" || fail "terminal left without echo"
grep -qE "(^| )icanon( |$)" "$TMP/stty" || fail "terminal left without icanon"
echo "stress_tui: ok ($(wc -l < "$TMP/sent") batches, $KEYS keys, seed $SEED)"
exit 0
