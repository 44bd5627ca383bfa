#!/bin/bash
# gpu_step.sh - the persistent decode kernel (k_step) on the GPU machine, in
# one short call: unpack the prebuilt bundle (.cache/cuda-prebuilt.tar.xz),
# test_cuda with it on and off, decode tok/s on tinyllama-1.1b and
# llama-3.2-1b (bf16) with it and with the kernel-per-matrix path, its time
# per phase (ATTNSCOPE_CUDA_STEP_TRACE), and racecheck on a tiny model.
#   bash tools/gpu_step.sh [CTXS]        (default: 128 2000)
set -u
PB=/tmp/attnscope-cuda-prebuilt
rm -rf "$PB"; mkdir -p "$PB"; tar -xJf .cache/cuda-prebuilt.tar.xz -C "$PB" || exit 1
CUBLAS=$(python3 -c "import nvidia.cublas as m,os;print(os.path.join(list(m.__path__)[0],'lib'))" 2>/dev/null)
export LD_LIBRARY_PATH=$PB/cuda/lib:/usr/local/cuda/lib64:$CUBLAS
BIN=$PB/cuda/bin/attnscope TEST=$PB/cuda/bin/test_cuda
echo "commit $(cat $PB/cuda/COMMIT)"
for s in 1 0; do
    ATTNSCOPE_CUDA_STEP=$s timeout 120 "$TEST" > /tmp/test_step$s.txt 2>&1
    echo "test_cuda STEP=$s rc=$? $(grep -c ' ok$' /tmp/test_step$s.txt) fixtures ok; $(grep -E 'PASSED|FAILED' /tmp/test_step$s.txt | tail -n 1)"
    grep -E "FAIL|rel L2 .*[1-9]e-0[0-1]" /tmp/test_step$s.txt | head -n 5
done
bench() {   # label model ctx env...
    local label=$1 m=$2 P=$3; shift 3
    r=$(env "$@" timeout 60 "$BIN" bench --synthetic "$m" --dtype bf16 --device cuda --prompt-len "$P" \
        --gen 128 --cache on --repeat 3 2>&1 | awk -F'|' '/^on /{gsub(/ /,"",$5); print $5}')
    printf '%-20s %-15s ctx %4d  decode %8s tok/s\n' "$label" "$m" "$P" "${r:-FAILED}"
}
for m in tinyllama-1.1b llama-3.2-1b; do
    for P in ${1:-128 2000}; do
        bench "k_step" "$m" "$P" ATTNSCOPE_CUDA_STEP=1
        bench "kernel per matrix" "$m" "$P" X=1
    done
    rm -f /tmp/step-trace.txt
    ATTNSCOPE_CUDA_STEP=1 ATTNSCOPE_CUDA_STEP_TRACE=/tmp/step-trace.txt timeout 60 "$BIN" bench --synthetic "$m" --dtype bf16 --device cuda \
        --prompt-len 128 --gen 64 --cache on > /dev/null 2>&1
    echo "trace $m, 128 tokens:"; cat /tmp/step-trace.txt 2>/dev/null
done
ATTNSCOPE_CUDA_STEP=1 timeout 90 compute-sanitizer --tool racecheck --error-exitcode 9 "$BIN" bench --synthetic tiny --dtype bf16 \
    --device cuda --prompt-len 70 --gen 4 --cache on > /tmp/race.txt 2>&1
echo "racecheck rc=$?"; grep -E "ERROR SUMMARY|hazard|Race|at .* in |by thread" /tmp/race.txt | head -n 16
