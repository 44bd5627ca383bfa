#!/bin/sh
# bench.sh BIN - what `make bench` runs: the engine's benchmarks on synthetic
# models (no download), each command echoed before its output so the figures
# can be copied into docs/performance.md with the command that produced them.
# Short runs; numbers on a shared machine vary: compare ratios within a run.
BIN=${1:-build/attnscope}
run() { echo "\$ $*"; "$@" || exit 1; echo; }

echo "# load: $(cat /proc/loadavg 2>/dev/null)"
# Decode with the cache on vs the read-bandwidth roofline (smollm2-135m, bf16).
run "$BIN" bench --synthetic smollm2-135m --dtype bf16 --prompt-len 128 --gen 64 --cache on --repeat 3 --roofline
# The same, each decode step paired with a read pass of its bytes (1 and 2 threads).
run "$BIN" bench --synthetic smollm2-135m --dtype bf16 --prompt-len 128 --gen 64 --cache on --paired --threads 1
run "$BIN" bench --synthetic smollm2-135m --dtype bf16 --prompt-len 128 --gen 64 --cache on --paired --threads 2
# Prefill of 512 tokens vs OpenBLAS sgemm on the same shapes.
run "$BIN" bench --synthetic smollm2-135m --dtype bf16 --prompt-len 512 --gen 1 --cache on --repeat 3 --roofline
# Cache on vs off at 512 tokens of context.
run "$BIN" bench --synthetic smollm2-135m --dtype bf16 --prompt-len 512 --gen 8 --cache both
# The speedup as the context grows.
echo "\$ sh tools/cache_table.sh $BIN smollm2-135m 4 64 128 256 512 1024 2048"
sh tools/cache_table.sh "$BIN" smollm2-135m 4 64 128 256 512 1024 2048 || exit 1
