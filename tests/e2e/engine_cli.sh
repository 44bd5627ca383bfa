#!/bin/sh
# engine_cli.sh BUILD - logits, greedy and bench on synthetic models: outputs,
# cache on == cache off, and exit code 2 with one line for bad usage.
BIN=${1:-build}/attnscope
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "engine_cli: $*"; exit 1; }

# expect CODE CMD...: the exit code, and exactly one stderr line on failure.
expect() {
    code=$1; shift
    "$@" >"$T/out" 2>"$T/err"; rc=$?
    [ $rc -eq "$code" ] || fail "'$*' exited $rc, expected $code: $(cat "$T/err")"
    if [ "$code" -ne 0 ]; then
        [ "$(wc -l <"$T/err")" -eq 1 ] || fail "'$*' should print one line on stderr, printed: $(cat "$T/err")"
    fi
}

# greedy: the same ids with the cache on and off, N of them, as a JSON array.
expect 0 "$BIN" greedy --synthetic tiny-qwen2 --ids 5,6,7,8 -n 6
on=$(cat "$T/out")
expect 0 "$BIN" greedy --synthetic tiny-qwen2 --ids 5,6,7,8 -n 6 --no-kv-cache
off=$(cat "$T/out")
[ "$on" = "$off" ] || fail "greedy differs with the cache off: $on vs $off"
echo "$on" | grep -Eq '^\[[0-9]+(, [0-9]+){5}\]$' || fail "greedy output is not a JSON array of 6 ids: $on"

# logits: .npy headers with the right shapes; the data sizes match.
expect 0 "$BIN" logits --synthetic tiny --ids 1,2,3,4,5 --out "$T/l.npy" --attn "$T/a.npy"
head -c 128 "$T/l.npy" | grep -aq "'shape': (5, 97)" || fail "logits.npy header lacks shape (5, 97)"
head -c 128 "$T/a.npy" | grep -aq "'shape': (2, 4, 5, 5)" || fail "attn.npy header lacks shape (2, 4, 5, 5)"
[ "$(wc -c <"$T/l.npy")" -eq $((128 + 5 * 97 * 4)) ] || fail "logits.npy has the wrong size"
[ "$(wc -c <"$T/a.npy")" -eq $((128 + 2 * 4 * 5 * 5 * 4)) ] || fail "attn.npy has the wrong size"
expect 0 "$BIN" logits --synthetic tiny --ids 1,2,3,4,5 --out "$T/l2.npy" --no-kv-cache
[ "$(wc -c <"$T/l2.npy")" -eq $((128 + 5 * 97 * 4)) ] || fail "cache-off logits.npy has the wrong size"

# bench --json has the keys DESIGN.md lists, one run per cache setting.
expect 0 "$BIN" bench --synthetic tiny --prompt-len 8 --gen 3 --cache both --json
for k in model device dtype threads prompt_len gen weights_bytes runs cache prefill_tok_s \
         decode_tok_s decode_ms_p50 decode_ms_p90 kv_bytes; do
    grep -q "\"$k\":" "$T/out" || fail "bench --json lacks \"$k\""
done
[ "$(grep -o '"cache": "o[nf]*"' "$T/out" | tr '\n' ' ')" = '"cache": "on" "cache": "off" ' ] ||
    fail "bench --json should have an on and an off run"
expect 0 "$BIN" bench --synthetic tiny --prompt-len 8 --gen 3
grep -q "speedup" "$T/out" || fail "bench table lacks the speedup column"
# --paired: a read pass after each cache-on step, its ratio quartiles in the JSON and the table.
expect 0 "$BIN" bench --synthetic tiny --prompt-len 8 --gen 4 --cache on --paired --json
for k in paired_ratio_p25 paired_ratio_p50 paired_ratio_p75 paired_read_ms_min; do
    grep -q "\"$k\": [0-9]" "$T/out" || fail "bench --paired --json lacks \"$k\""
done
expect 0 "$BIN" bench --synthetic tiny --prompt-len 8 --gen 4 --cache both --paired
[ "$(grep -c '^paired with a read pass' "$T/out")" -eq 1 ] || fail "bench --paired should report one paired line (cache on only)"

# Bad usage and bad input: exit 2, one line.
expect 2 "$BIN" bench --synthetic tiny --device cuda
grep -q "no CUDA backend" "$T/err" || fail "--device cuda should say there is no CUDA backend"
expect 2 "$BIN" bench --synthetic nosuchmodel
expect 2 "$BIN" bench --synthetic tiny --cache sometimes
expect 2 "$BIN" bench --synthetic tiny --gen 0
expect 2 "$BIN" bench --synthetic tiny --prompt-len
expect 2 "$BIN" bench --synthetic tiny --bogus
expect 2 "$BIN" bench
expect 2 "$BIN" greedy --synthetic tiny --ids 1,2,x -n 3
expect 2 "$BIN" greedy --synthetic tiny --ids 1,2,97 -n 3
expect 2 "$BIN" greedy --synthetic tiny --ids 1 -n 0
expect 2 "$BIN" logits --synthetic tiny --ids 1,2
expect 2 "$BIN" logits --model "$T/no-such-folder" --ids 1 --out "$T/x.npy"
expect 1 "$BIN" logits --synthetic tiny --ids 1 --out "$T/no-such-folder/x.npy"
exit 0
