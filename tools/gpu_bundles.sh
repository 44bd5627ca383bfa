#!/bin/bash
# gpu_bundles.sh - prefill and decode tok/s of several builds side by side,
# in one call on the GPU machine: the prebuilt bundle of the current commit
# (.cache/cuda-prebuilt.tar.xz, label "cur") and every
# .cache/cuda-prebuilt-NAME.tar.xz carried beside it (label NAME, e.g. a
# copy of an earlier commit's bundle). For each model and prompt length,
# `attnscope bench ... --gen 16 --repeat 3` with each build, twice in
# alternation; compare as ratios within the call.
#   bash tools/gpu_bundles.sh [MODELS] [PROMPTS]
set -u
. "$(dirname "$0")/gpu_prebuilt.sh"
names=(cur) bins=("$BIN")
for f in .cache/cuda-prebuilt-*.tar.xz; do
    [ -f "$f" ] || continue
    n=${f#.cache/cuda-prebuilt-}; n=${n%.tar.xz}; d=/tmp/attnscope-bundle-$n
    rm -rf "$d"; mkdir -p "$d"; tar -xJf "$f" -C "$d" || continue
    names+=("$n"); bins+=("$d/cuda/bin/attnscope")
    echo "$n: commit $(cat "$d/cuda/COMMIT")"
done
for m in ${1:-tinyllama-1.1b llama-3.2-1b}; do
    for P in ${2:-512 2048}; do
        for rep in 1 2; do
            for i in "${!names[@]}"; do
                b=${bins[$i]}
                r=$(LD_LIBRARY_PATH="$(dirname "$(dirname "$b")")/lib:$LD_LIBRARY_PATH" timeout 90 "$b" bench \
                    --synthetic "$m" --dtype bf16 --device cuda --prompt-len "$P" --gen 16 --cache on --repeat 3 2>&1 |
                    awk -F'|' '/^on /{gsub(/ /,"",$3); gsub(/ /,"",$5); print $3 " prefill, " $5 " decode"}')
                echo "== $m P $P ${names[$i]}: ${r:-FAILED} tok/s"
            done
        done
    done
done
