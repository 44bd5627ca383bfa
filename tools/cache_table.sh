#!/bin/sh
# cache_table.sh [BIN] [MODEL] [GEN] [LENGTHS...] - decode speed with the KV cache
# on and off at growing context lengths, as a Markdown table (the speedup is
# on / off). Defaults: build/attnscope, smollm2-135m (synthetic, bf16), 4
# generated tokens per run, contexts 64 128 256 512 1024 2048.
BIN=${1:-build/attnscope}
MODEL=${2:-smollm2-135m}
GEN=${3:-4}
[ $# -gt 3 ] && shift 3 && LENGTHS="$*"
LENGTHS=${LENGTHS:-64 128 256 512 1024 2048}

field() {  # field JSON RUN_INDEX KEY: a number from the runs list of bench --json
    echo "$1" | sed 's/.*"runs": \[//' | tr '}' '\n' | sed -n "$(($2 + 1))p" |
        sed -n "s/.*\"$3\": \([0-9.e+-]*\).*/\1/p"
}

echo "| context | cache on tok/s | on ms/tok (p50) | cache off tok/s | off ms/tok (p50) | speedup |"
echo "|--------:|---------------:|----------------:|----------------:|-----------------:|--------:|"
for L in $LENGTHS; do
    out=$("$BIN" bench --synthetic "$MODEL" --prompt-len "$L" --gen "$GEN" --cache both --json) || {
        echo "cache_table.sh: bench failed at context $L" >&2; exit 1; }
    on=$(field "$out" 0 decode_tok_s); on50=$(field "$out" 0 decode_ms_p50)
    off=$(field "$out" 1 decode_tok_s); off50=$(field "$out" 1 decode_ms_p50)
    sp=$(awk -v a="$on" -v b="$off" 'BEGIN { printf "%.1fx", a / b }')
    printf "| %7s | %14.2f | %15.2f | %15.3f | %16.1f | %7s |\n" "$L" "$on" "$on50" "$off" "$off50" "$sp"
done
