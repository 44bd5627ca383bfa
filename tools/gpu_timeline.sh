#!/bin/bash
# gpu_timeline.sh - where a decode step's time goes, kernel by kernel, on
# the GPU machine: unpack the prebuilt bundle (.cache/cuda-prebuilt.tar.xz)
# and run `attnscope bench` with ATTNSCOPE_CUDA_TIMELINE for each variant
# (label:ENV=V+ENV=V ...; values may hold commas), printing decode tok/s and the timeline table
# (per kernel kind: launch and release after the previous kernel's end, body,
# tail, span; us, the last step of the run).
#   TL_VARIANTS="default:X=1 wpr4:ATTNSCOPE_CUDA_WPR=4+ATTNSCOPE_CUDA_PRE=4" bash tools/gpu_timeline.sh [MODELS] [CTXS]
set -u
. "$(dirname "$0")/gpu_prebuilt.sh"
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
