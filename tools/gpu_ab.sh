#!/bin/bash
# gpu_ab.sh - decode tok/s of decode-path variants side by side, in one call
# on the GPU machine (prebuilt bundle): for each model and variant
# (label:ENV=V+ENV=V ...), `attnscope bench` after a P-token prompt, 128
# steps, best of 3. Compare variants as ratios within one call.
#   AB_VARIANTS="fused:X=1 two:ATTNSCOPE_CUDA_MLP=0" bash tools/gpu_ab.sh [MODELS] [P]
set -u
. "$(dirname "$0")/gpu_prebuilt.sh"
for m in ${1:-tinyllama-1.1b llama-3.2-1b}; do
    for v in ${AB_VARIANTS:-default:X=1}; do
        r=$(env $(echo "${v#*:}" | tr + ' ') timeout 90 "$BIN" bench --synthetic "$m" --dtype bf16 --device cuda \
            --prompt-len "${2:-512}" --gen 128 --cache on --repeat 3 2>&1 | awk -F'|' '/^on /{gsub(/ /,"",$5); print $5}')
        echo "== $m P ${2:-512} ${v%%:*}: decode ${r:-FAILED} tok/s"
    done
done
