#!/bin/bash
# gpu_check.sh - the CUDA backend on a GPU machine in one unattended call:
# build (make CUDA=1 into build-cuda; if that fails, the prebuilt bundle
# .cache/cuda-prebuilt.tar.xz), test_cuda (CUDA vs CPU and vs the
# transformers fixtures), compute-sanitizer memcheck, device-to-device copy
# bandwidth, attnscope bench on tinyllama-1.1b and llama-3.2-1b (bf16,
# --device cuda), then tools/bench_hf.py if time remains. Every step is
# time-boxed and logged to LOGDIR/NN-step.log; a failed step never stops the
# rest; a summary is printed at the end (and kept in LOGDIR/summary.txt).
#
# In the GPU batch (carry .cache/cuda-prebuilt.tar.xz, 5.6 MB, made here by
# --prebuild, for a machine without the Debian build dependencies):
#       bash tools/gpu_check.sh --build "$WORK/cuda" &      # early, beside the training (CPU only)
#       ... after training:  REF_DIR="$WORK/ref" bash tools/gpu_check.sh "$WORK/cuda"
#   on the GPU machine, repository root:
#       bash tools/gpu_check.sh --build LOGDIR    (optional, earlier: nvcc + cc only, no GPU)
#       REF_DIR=/path/to/ref bash tools/gpu_check.sh LOGDIR      (REF_DIR optional)
#   here, before the run (no GPU needed): pack the prebuilt fallback
#       bash tools/gpu_check.sh --prebuild
# BUDGET (seconds, default 90) bounds the whole run; HF=0 skips bench_hf.py.
set -u
export PYTHONUNBUFFERED=1

if [ "${1:-}" = "--prebuild" ]; then
    # Portable binaries (x86-64-v3, not -march=native) from the committed tree,
    # with the non-system shared libraries they need (not cuBLAS/cudart: the
    # GPU machine's CUDA 13 provides those).
    set -e
    # A worktree kept under .cache (git-ignored): a new commit rebuilds only
    # what changed.
    root=$(pwd); tmp=$root/.cache/prebuild-wt
    mkdir -p .cache
    [ -d "$tmp" ] || git worktree add -q --detach "$tmp" HEAD
    git -C "$tmp" checkout -q --detach "$(git rev-parse HEAD)"
    printf '#!/bin/sh\nfor a in "$@"; do [ "$a" = "-march=native" ] && a=-march=x86-64-v3; set -- "$@" "$a"; shift; done\nexec cc "$@"\n' > "$tmp/.ccwrap"
    chmod +x "$tmp/.ccwrap"
    (cd "$tmp" && make -j2 CUDA=1 WERROR=1 CC="$tmp/.ccwrap" BUILD=bc bc/attnscope bc/tests/test_cuda >/dev/null)
    rm -rf "$tmp/pack"; mkdir -p "$tmp/pack/cuda/bin" "$tmp/pack/cuda/lib"
    cp "$tmp/bc/attnscope" "$tmp/bc/tests/test_cuda" "$tmp/pack/cuda/bin/"
    strip "$tmp/pack/cuda/bin/"*
    ldd "$tmp/bc/attnscope" "$tmp/bc/tests/test_cuda" | awk '/=> \//{print $3}' | sort -u |
        grep -v -E '/(libc|libm|libdl|librt|libpthread|ld-linux[^/]*|libstdc\+\+|libgcc_s|libcuda[^/]*|libcublas[^/]*)\.so' |
        while read -r l; do cp -L "$l" "$tmp/pack/cuda/lib/"; done
    git rev-parse HEAD > "$tmp/pack/cuda/COMMIT"
    tar -cJf .cache/cuda-prebuilt.tar.xz -C "$tmp/pack" cuda
    echo "packed .cache/cuda-prebuilt.tar.xz ($(du -h .cache/cuda-prebuilt.tar.xz | cut -f1), commit $(git rev-parse --short HEAD))"
    cd "$root"
    exit 0
fi

MODE=check
if [ "${1:-}" = "--build" ]; then MODE=build; BUDGET=${BUDGET:-400}; shift; fi
LOG=${1:?usage: bash tools/gpu_check.sh [--build] LOGDIR  (or --prebuild)}
mkdir -p "$LOG"
BUDGET=${BUDGET:-90}
start=$(date +%s)
SUMMARY="$LOG/summary.txt"
: > "$SUMMARY"
elapsed() { echo $(( $(date +%s) - start )); }
left() { echo $(( BUDGET - $(elapsed) )); }
note() { echo "[$(elapsed)s] $*" | tee -a "$SUMMARY"; }
# step NAME SECONDS CMD...: runs CMD under timeout (capped by the time left),
# output to LOG/NAME.log; notes ok / FAILED rc / TIMED OUT / skipped.
step() {
    local name=$1 secs=$2; shift 2
    local l; l=$(left)
    if [ "$l" -lt 5 ]; then note "$name: skipped (budget spent)"; return 99; fi
    [ "$secs" -gt "$l" ] && secs=$l
    local t0; t0=$(date +%s)
    timeout -k 5 "$secs" "$@" > "$LOG/$name.log" 2>&1
    local rc=$?
    local dt=$(( $(date +%s) - t0 ))
    if [ $rc -eq 0 ]; then note "$name: ok (${dt}s)"
    elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then note "$name: TIMED OUT after ${secs}s"
    else note "$name: FAILED rc=$rc (${dt}s): $(tail -n 1 "$LOG/$name.log")"; fi
    return $rc
}

note "gpu_check at $(git rev-parse --short HEAD 2>/dev/null) on $(hostname)"
{ nvidia-smi 2>&1; echo; command -v nvcc && nvcc --version; echo; uname -a; cat /etc/os-release 2>/dev/null; ldd --version 2>&1 | head -1; nproc; } > "$LOG/00-env.log" 2>&1
note "gpu: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -1)"

# CUDA libraries: the toolkit's, and the pip wheels' (nvidia.cublas) if there.
CUDA_HOME=${CUDA_HOME:-$(dirname "$(dirname "$(command -v nvcc 2>/dev/null || echo /usr/local/cuda/bin/nvcc)")")}
LDP="$CUDA_HOME/lib64:$CUDA_HOME/lib"
for mod in cublas cuda_runtime; do
    d=$(python3 -c "import nvidia.$mod as m, os; print(os.path.join(list(m.__path__)[0], 'lib'))" 2>/dev/null)
    [ -n "$d" ] && [ -d "$d" ] && LDP="$LDP:$d"
done

# 1. build here (skipped when --build ran earlier in this tree); otherwise the
#    prebuilt bundle.
BIN= TEST=
build() { step 01-build "$1" make -j"$(nproc)" CUDA=1 BUILD=build-cuda CUDA_HOME="$CUDA_HOME" build-cuda/attnscope build-cuda/tests/test_cuda; }
if [ "$MODE" = build ]; then
    build 300 && hostname > build-cuda/.built-here
    note "build only: done in $(elapsed)s"
    exit 0
fi
if [ -x build-cuda/attnscope ] && [ -x build-cuda/tests/test_cuda ] &&
   [ "$(cat build-cuda/.built-here 2>/dev/null)" = "$(hostname)" ]; then
    note "01-build: already built by --build"
    BIN=build-cuda/attnscope TEST=build-cuda/tests/test_cuda
elif build 60; then
    BIN=build-cuda/attnscope TEST=build-cuda/tests/test_cuda
fi
if [ -n "$BIN" ] && LD_LIBRARY_PATH="$LDP:${LD_LIBRARY_PATH:-}" ldd "$BIN" "$TEST" 2>&1 | grep -q "not found"; then
    note "build-cuda binaries miss libraries: $(LD_LIBRARY_PATH="$LDP" ldd "$BIN" | grep 'not found' | tr '\n' ' ')"
    BIN= TEST=
fi
if [ -n "$BIN" ]; then
    export LD_LIBRARY_PATH="$LDP:${LD_LIBRARY_PATH:-}"
    note "using the binaries built here (build-cuda)"
elif [ -f .cache/cuda-prebuilt.tar.xz ]; then
    PB=/tmp/attnscope-cuda-prebuilt
    rm -rf "$PB"; mkdir -p "$PB"
    if tar -xJf .cache/cuda-prebuilt.tar.xz -C "$PB"; then
        BIN=$PB/cuda/bin/attnscope TEST=$PB/cuda/bin/test_cuda
        export LD_LIBRARY_PATH="$PB/cuda/lib:$LDP:${LD_LIBRARY_PATH:-}"
        note "using the prebuilt bundle (commit $(cut -c1-7 "$PB/cuda/COMMIT" 2>/dev/null); tree is $(git rev-parse --short HEAD 2>/dev/null))"
    fi
fi
if [ -z "$BIN" ]; then
    note "no binaries: nothing else can run (see 01-build.log)"
else
    ldd "$BIN" "$TEST" > "$LOG/01-ldd.log" 2>&1
    grep -q "not found" "$LOG/01-ldd.log" && note "missing libraries: $(grep 'not found' "$LOG/01-ldd.log" | sort -u | tr '\n' ' ')"

    # 2. correctness: CUDA vs CPU, vs transformers fixtures (REF_DIR), greedy ids.
    REF=${REF_DIR:-tests/fixtures/ref}
    [ -d "$REF" ] || note "no fixtures at $REF (test_cuda skips that test)"
    step 02-test_cuda 150 env ATTNSCOPE_REF_DIR="$REF" "$TEST"
    grep -E "rel L2|fixture|skipped|FAIL|ERROR|PASSED" "$LOG/02-test_cuda.log" | head -40 | sed 's/^/    /' | tee -a "$SUMMARY"

    # 3. device-to-device copy bandwidth (bytes read + written per second).
    step 03-d2d 10 python3 -c '
import torch
n = 4 << 30
x = torch.empty(n, dtype=torch.uint8, device="cuda"); y = torch.empty_like(x)
for _ in range(3): y.copy_(x)
torch.cuda.synchronize()
e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
best = 1e9
for _ in range(10):
    e0.record(); y.copy_(x); e1.record(); torch.cuda.synchronize()
    best = min(best, e0.elapsed_time(e1) / 1e3)
print("d2d copy of %d MB: best %.3f ms; read+write %.1f GB/s; copy %.1f GB/s" % (n >> 20, best * 1e3, 2 * n / best / 1e9, n / best / 1e9))
print("D2D_RW_BPS %.0f" % (2 * n / best))
'
    RW=$(awk '/^D2D_RW_BPS/{print $2}' "$LOG/03-d2d.log")
    # 4. the bf16 GEMM rate (random data, cuBLAS through torch).
    step 04-gemm 20 python3 -c '
import torch
n = 8192
a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16); b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
for _ in range(3): a @ b
torch.cuda.synchronize()
e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
ts = []
for _ in range(10):
    e0.record(); a @ b; e1.record(); torch.cuda.synchronize(); ts.append(e0.elapsed_time(e1) / 1e3)
ts.sort()
print("bf16 GEMM %d^3: median %.3f ms = %.1f TFLOP/s" % (n, ts[5] * 1e3, 2 * n ** 3 / ts[5] / 1e12))
'
    grep "GEMM" "$LOG/04-gemm.log" | sed 's/^/    /' | tee -a "$SUMMARY"
    # 4b. decode tuning: warps per matrix row (ATTNSCOPE_CUDA_WPR), short context.
    for wpr in ${WPR_SWEEP:-}; do   # e.g. WPR_SWEEP="0 1 2 4" (register matvec only)
        step "04-wpr$wpr" 20 env ATTNSCOPE_CUDA_MV=reg ATTNSCOPE_CUDA_WPR=$wpr "$BIN" bench --synthetic tinyllama-1.1b --dtype bf16 --device cuda \
            --prompt-len 128 --gen 128 --cache on --repeat 3
        grep -E "^on " "$LOG/04-wpr$wpr.log" | tail -1 | sed "s/^/    wpr $wpr: /" | tee -a "$SUMMARY"
    done
    grep "d2d copy" "$LOG/03-d2d.log" | sed 's/^/    /' | tee -a "$SUMMARY"

    # 5. bench: decode and prefill at 512, prefill at 2048; 7. cache on vs
    # off at 2048 (if time). Prefill's share of the GEMM rate counts 2 FLOPs
    # per weight per token (bf16: weights_bytes FLOPs a token).
    GEMM=$(sed -n 's/.*= \([0-9.]*\) TFLOP\/s.*/\1/p' "$LOG/04-gemm.log" | tail -n 1)
    for model in tinyllama-1.1b llama-3.2-1b; do
        for P in 512 2048; do
            G=128; [ "$P" = 2048 ] && G=16
            step "05-bench-$model-$P" 30 "$BIN" bench --synthetic "$model" --dtype bf16 --device cuda \
                --prompt-len "$P" --gen "$G" --cache on --repeat 3 --json
            python3 - "$LOG/05-bench-$model-$P.log" "${RW:-0}" "${GEMM:-0}" "$P" <<'EOF' | tee -a "$SUMMARY"
import json, sys
try:
    line = [l for l in open(sys.argv[1]) if l.startswith("{")][-1]
    j = json.loads(line); rw = float(sys.argv[2]); gemm = float(sys.argv[3]) * 1e12; p = sys.argv[4]
    for r in j["runs"]:
        wb = j["weights_bytes"]
        frac = r["decode_tok_s"] * wb / rw if rw > 0 else float("nan")
        share = r["prefill_tok_s"] * wb / gemm if gemm > 0 else float("nan")
        print("    %s cache %s: prefill %s %.1f tok/s = %.3f of the bf16 GEMM rate, decode %.1f tok/s; weights %.0f MB;"
              " decode tok/s x weights / d2d bandwidth (read+write) = %.3f"
              % (j["model"], r["cache"], p, r["prefill_tok_s"], share, r["decode_tok_s"], wb / 1e6, frac))
except Exception as e:
    print("    (no bench figures: %s)" % e)
EOF
        done
    done
    # 6. memcheck on a small run (prefill, decode, cache off) and on test_cuda.
    if command -v compute-sanitizer >/dev/null; then
        step 06-memcheck 30 compute-sanitizer --tool memcheck --error-exitcode 9 \
            "$BIN" bench --synthetic tiny --dtype bf16 --device cuda --prompt-len 40 --gen 4 --cache both --observe
        grep -E "ERROR SUMMARY" "$LOG/06-memcheck.log" | sed 's/^/    /' | tee -a "$SUMMARY"
        step 06-memcheck-test 120 compute-sanitizer --tool memcheck --error-exitcode 9 env ATTNSCOPE_REF_DIR=/nonexistent "$TEST"
        grep -E "ERROR SUMMARY|PASSED|FAILED" "$LOG/06-memcheck-test.log" | sed 's/^/    test_cuda: /' | tee -a "$SUMMARY"
        step 06-racecheck 60 compute-sanitizer --tool racecheck --error-exitcode 9 \
            "$BIN" bench --synthetic tiny --dtype bf16 --device cuda --prompt-len 70 --gen 4 --cache on
        grep -E "ERROR SUMMARY|hazard|Race|at .* in " "$LOG/06-racecheck.log" | head -n 12 | sed "s/^/    racecheck: /" | tee -a "$SUMMARY"
    else
        note "06-memcheck: skipped (no compute-sanitizer)"
    fi

    for model in tinyllama-1.1b; do
        step "07-cache-2048-$model" 40 "$BIN" bench --synthetic "$model" --dtype bf16 --device cuda \
            --prompt-len 2040 --gen 8 --cache both
        grep -E "^(on|off) " "$LOG/07-cache-2048-$model.log" | sed 's/^/    /' | tee -a "$SUMMARY"
    done

    # 8. the same shapes through transformers (eager) on this GPU.
    if [ "${HF:-1}" != 0 ] && [ -f tools/bench_hf.py ]; then
        step 08-bench_hf 60 python3 tools/bench_hf.py --prompt-len 512 --gen 32
        grep -E "^(hf|HF|  )" "$LOG/08-bench_hf.log" | head -10 | sed 's/^/    /' | tee -a "$SUMMARY"
    fi
fi
note "done in $(elapsed)s; logs in $LOG"
echo "===== summary ($SUMMARY)"
cat "$SUMMARY"
exit 0
