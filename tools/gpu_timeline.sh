#!/bin/bash
# gpu_timeline.sh - where a decode step's time goes, kernel by kernel, on
# the GPU machine: unpack the prebuilt bundle (.cache/cuda-prebuilt.tar.xz)
# and run `attnscope bench` with ATTNSCOPE_CUDA_TIMELINE for each variant
# (label:ENV=V+ENV=V ...; values may hold commas), printing decode tok/s and the timeline table
# (per kernel kind: launch and release after the previous kernel's end, body,
# tail, span; us, the last step of the run).
#   TL_VARIANTS="default:X=1 wpr4:ATTNSCOPE_CUDA_WPR=4+ATTNSCOPE_CUDA_PRE=4" bash tools/gpu_timeline.sh [MODELS] [CTXS]
set -u
PB=/tmp/attnscope-cuda-prebuilt
if [ ! -x "$PB/cuda/bin/attnscope" ]; then
    rm -rf "$PB"; mkdir -p "$PB"; tar -xJf .cache/cuda-prebuilt.tar.xz -C "$PB" || exit 1
fi
CUBLAS=$(python3 -c "import nvidia.cublas as m,os;print(os.path.join(list(m.__path__)[0],'lib'))" 2>/dev/null)
export LD_LIBRARY_PATH=$PB/cuda/lib:/usr/local/cuda/lib64:$CUBLAS
BIN=$PB/cuda/bin/attnscope
echo "commit $(cat $PB/cuda/COMMIT)"
for m in ${1:-tinyllama-1.1b llama-3.2-1b}; do
    for P in ${2:-128}; do
        for v in ${TL_VARIANTS:-default:X=1}; do
            rm -f /tmp/tl.txt
            r=$(env $(echo "${v#*:}" | tr + ' ') ATTNSCOPE_CUDA_TIMELINE=/tmp/tl.txt timeout 60 "$BIN" bench \
                --synthetic "$m" --dtype bf16 --device cuda --prompt-len "$P" --gen 64 --cache on --repeat 2 2>&1 |
                awk -F'|' '/^on /{gsub(/ /,"",$5); print $5}')
            echo "== $m ctx $P ${v%%:*}: decode ${r:-FAILED} tok/s (timeline on)"
            cat /tmp/tl.txt 2>/dev/null | tail -n 8
        done
    done
done
