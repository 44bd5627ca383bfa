#!/bin/bash
# gpu_tune.sh - decode variants of the CUDA backend side by side, on the GPU
# machine (after tools/gpu_check.sh unpacked or built the binaries): warps per
# row, programmatic dependent launch on/off, matvec blocks per SM, the streamed
# matvec against the register one; then a profile per kernel kind
# (ATTNSCOPE_CUDA_PROFILE). One line per variant. VARIANTS=quick: fewer;
# VARIANTS=attn: decode attention with and without V staged in shared memory;
# VARIANTS=head: decode attention per query head against per KV head;
# VARIANTS=step: the persistent decode kernel (opt-in) against the
# kernel-per-matrix path (default) and other ring stage sizes; VARIANTS=mvs: the streamed matvec's settings; VARIANTS=pf: the L2
# prefetch of the next kernel's weights (default off) at several sizes; VARIANTS=ablate: decode
# without attention (timing only) and larger attention chunks. CTXS: contexts (default 128 2000).
#   bash tools/gpu_tune.sh BIN [MODELS]
set -u
BIN=${1:?usage: gpu_tune.sh BIN [MODELS]}
MODELS=${2:-"tinyllama-1.1b llama-3.2-1b"}
run() {   # label env... : decode tok/s (cache on) at 128 and 2000 tokens of context
    local label=$1; shift
    for m in $MODELS; do
        for P in ${CTXS:-128 2000}; do
            r=$(env "$@" timeout 60 "$BIN" bench --synthetic "$m" --dtype bf16 --device cuda --prompt-len $P \
                --gen 128 --cache on --repeat 3 2>&1 | awk -F'|' '/^on /{gsub(/ /,"",$5); print $5}')
            printf '%-22s %-15s ctx %4d  decode %8s tok/s\n' "$label" "$m" "$P" "${r:-FAILED}"
        done
    done
}
run "default"             X=1
if [ "${VARIANTS:-}" = attn ]; then
    run "vstage off"          ATTNSCOPE_CUDA_VSTAGE=0
elif [ "${VARIANTS:-}" = head ]; then
    run "attn per head"       ATTNSCOPE_CUDA_ATTN=head
elif [ "${VARIANTS:-}" = ablate ]; then   # what attention costs (skipped: wrong logits, timing only)
    run "no attention"        ATTNSCOPE_CUDA_SKIP_ATTN=1
    run "min chunk 64"        ATTNSCOPE_CUDA_MINCHUNK=64
    run "min chunk 128"       ATTNSCOPE_CUDA_MINCHUNK=128
elif [ "${VARIANTS:-}" = step ]; then   # the persistent decode kernel against the kernel-per-matrix path
    run "k_step"              ATTNSCOPE_CUDA_STEP=1
    run "per matrix, no stage" ATTNSCOPE_CUDA_VSTAGE=0
    run "k_step, stage 16 KiB" ATTNSCOPE_CUDA_STEP=1 ATTNSCOPE_CUDA_STAGE=16
    run "k_step, stage 64 KiB" ATTNSCOPE_CUDA_STEP=1 ATTNSCOPE_CUDA_STAGE=64
elif [ "${VARIANTS:-}" = pf ]; then   # L2 prefetch of the next kernel's weights: MiB at most
    for mb in 8 16 32; do run "l2 prefetch ${mb} MiB" ATTNSCOPE_CUDA_PF=$mb; done
elif [ "${VARIANTS:-}" = mvs ]; then   # the streamed matvec: blocks/SM, ring KiB, chunk KiB
    for v in "1 72 16" "1 72 8" "1 72 4" "2 48 8" "2 48 4" "3 32 4" "4 24 4" "4 24 2"; do
        set -- $v
        run "mvs b$1 r$2 c$3" ATTNSCOPE_CUDA_MV=mvs ATTNSCOPE_CUDA_MVS_BPS=$1 ATTNSCOPE_CUDA_MVS_RING=$2 ATTNSCOPE_CUDA_MVS_CHUNK=$3
    done
    # the stream alone (products skipped, logits wrong): the copy engine's rate
    run "mvs dry b1 r72 c16"  ATTNSCOPE_CUDA_MV=mvs ATTNSCOPE_CUDA_MVS_DRY=1
    run "mvs dry b2 r48 c8"   ATTNSCOPE_CUDA_MV=mvs ATTNSCOPE_CUDA_MVS_DRY=1 ATTNSCOPE_CUDA_MVS_BPS=2 ATTNSCOPE_CUDA_MVS_RING=48 ATTNSCOPE_CUDA_MVS_CHUNK=8
elif [ "${VARIANTS:-}" != quick ]; then
    run "pdl off"             ATTNSCOPE_CUDA_PDL=0
    run "blocks/SM 2"         ATTNSCOPE_CUDA_BPS=2
    run "mvs"                 ATTNSCOPE_CUDA_MV=mvs
fi
for m in $MODELS; do
    rm -f /tmp/attnscope-prof.txt
    ATTNSCOPE_CUDA_PROFILE=/tmp/attnscope-prof.txt "$BIN" bench --synthetic "$m" --dtype bf16 --device cuda \
        --prompt-len 128 --gen 32 --cache on >/dev/null 2>&1
    echo "profile $m (uncaptured steps, events between kernels):"
    cat /tmp/attnscope-prof.txt 2>/dev/null
done
