#!/bin/bash
# gpu_step.sh - the persistent decode kernel (k_step) on the GPU machine, in
# one short call: unpack the prebuilt bundle (.cache/cuda-prebuilt.tar.xz),
# test_cuda with it on and off, decode tok/s on tinyllama-1.1b and
# llama-3.2-1b (bf16) with it and with the kernel-per-matrix path, its time
# per phase (ATTNSCOPE_CUDA_STEP_TRACE), and racecheck on a tiny model.
#   bash tools/gpu_step.sh [CTXS]        (default: 128 2000)
set -u
. "$(dirname "$0")/gpu_prebuilt.sh"
for s in 1 0; do
    ATTNSCOPE_CUDA_STEP=$s ATTNSCOPE_CUDA_INFLIGHT=${STEP_TEST_INFLIGHT:-32} timeout 120 "$TEST" > /tmp/test_step$s.txt 2>&1
    echo "test_cuda STEP=$s rc=$? $(grep -c ' ok$' /tmp/test_step$s.txt) fixtures ok; $(grep -E 'PASSED|FAILED' /tmp/test_step$s.txt | tail -n 1)"
    grep -E "FAIL|rel L2 .*[1-9]e-0[0-1]" /tmp/test_step$s.txt | head -n 5
done
bench() {   # label model ctx env...
    local label=$1 m=$2 P=$3; shift 3
    r=$(env "$@" timeout 60 "$BIN" bench --synthetic "$m" --dtype bf16 --device cuda --prompt-len "$P" \
        --gen 128 --cache on --repeat 3 2>&1 | awk -F'|' '/^on /{gsub(/ /,"",$5); print $5}')
    printf '%-20s %-15s ctx %4d  decode %8s tok/s\n' "$label" "$m" "$P" "${r:-FAILED}"
}
# label:env pairs (space-free env lists joined by commas); STEP_VARIANTS overrides
VARS=${STEP_VARIANTS:-"matrix:X=1 matrix-pre0:ATTNSCOPE_CUDA_PRE=0 matrix-pre4:ATTNSCOPE_CUDA_PRE=4 step:ATTNSCOPE_CUDA_STEP=1 step-fl32:ATTNSCOPE_CUDA_STEP=1,ATTNSCOPE_CUDA_INFLIGHT=32 step-fl64:ATTNSCOPE_CUDA_STEP=1,ATTNSCOPE_CUDA_INFLIGHT=64 step-s16-fl32:ATTNSCOPE_CUDA_STEP=1,ATTNSCOPE_CUDA_STAGE=16,ATTNSCOPE_CUDA_INFLIGHT=32 step-fl32-mc8:ATTNSCOPE_CUDA_STEP=1,ATTNSCOPE_CUDA_INFLIGHT=32,ATTNSCOPE_CUDA_MINCHUNK=8"}
TRACES=${STEP_TRACES:-"ATTNSCOPE_CUDA_STEP=1 ATTNSCOPE_CUDA_STEP=1,ATTNSCOPE_CUDA_INFLIGHT=32"}
for m in tinyllama-1.1b llama-3.2-1b; do
    for P in ${1:-128 2000}; do
        for v in $VARS; do
            bench "${v%%:*}" "$m" "$P" $(echo "${v#*:}" | tr , ' ')
        done
    done
    for t in $TRACES; do
        rm -f /tmp/step-trace.txt
        env $(echo "$t" | tr , ' ') ATTNSCOPE_CUDA_STEP_TRACE=/tmp/step-trace.txt timeout 60 "$BIN" bench --synthetic "$m" \
            --dtype bf16 --device cuda --prompt-len 128 --gen 64 --cache on > /dev/null 2>&1
        echo "trace $m, 128 tokens, $t:"; cat /tmp/step-trace.txt 2>/dev/null
    done
done
ATTNSCOPE_CUDA_STEP=1 ATTNSCOPE_CUDA_INFLIGHT=32 timeout 90 compute-sanitizer --tool racecheck --error-exitcode 9 "$BIN" bench --synthetic tiny --dtype bf16 \
    --device cuda --prompt-len 70 --gen 4 --cache on > /tmp/race.txt 2>&1
echo "racecheck rc=$?"; grep -E "ERROR SUMMARY|hazard|Race|at .* in |by thread" /tmp/race.txt | head -n 16
