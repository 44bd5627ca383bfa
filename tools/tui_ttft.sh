#!/bin/sh
# tui_ttft.sh - wall time from pressing Enter in the TUI (inside tmux) to the
# first reply text on screen, on the bundled chat model. Run from the
# repository root after `make`.
S=ttft$$
tmux -L $S -f /dev/null new-session -d -x 200 -y 50 "./build/attnscope --model models/chat --seed 1"
n=0; until tmux -L $S capture-pane -p | grep -q "F1 or ? for help" || [ $n -ge 300 ]; do sleep 0.05; n=$((n+1)); done
tmux -L $S send-keys "What does teacher mean?"
sleep 0.3
t0=$(date +%s%N)
tmux -L $S send-keys Enter
# Poll without sleeping (the figure is in milliseconds), but give up after 10 s.
until tmux -L $S capture-pane -p | grep -qE "llm ▏ *[A-Za-z]"; do
    [ $(( $(date +%s%N) - t0 )) -lt 10000000000 ] && continue
    echo "tui_ttft: no reply text on screen within 10 s"; tmux -L $S kill-server; exit 1
done
t1=$(date +%s%N)
echo "first reply text on screen $(( (t1 - t0) / 1000000 )) ms after Enter"
tmux -L $S capture-pane -p | grep -E "TTFT" | sed 's/.*│//' | head -2
tmux -L $S kill-server
