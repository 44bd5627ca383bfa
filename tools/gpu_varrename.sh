#!/bin/bash
# gpu_varrename.sh - trains only the var_rename model on the GPU machine (alone on
# the GPU), then evaluates it per hop depth, analyses its heads and checks it
# against transformers. Needs no data files (the sequences are generated).
#   usage (repository root, GPU machine): bash tools/gpu_varrename.sh OUTDIR
#   writes OUTDIR/var_rename/ (the Hugging Face folder), OUTDIR/var_rename_report.json
#   and OUTDIR/train_var_rename.log. MIN_VAR (default 6.5) is the training budget
#   in minutes; evaluation and checks add about half a minute. EXTRA adds options
#   to train.py (e.g. EXTRA="--chains 4 --renames 16").
# Exit status: train.py's (0 when the folder and report were written).
set -u
OUT=${1:?usage: gpu_varrename.sh OUTDIR}
PY=${PY:-python3}
MIN_VAR=${MIN_VAR:-6.5}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
start=$(date +%s)
"$PY" tools/train.py var_rename --out "$OUT/var_rename" --minutes "$MIN_VAR" \
    --report "$OUT/var_rename_report.json" --log-every 500 --eval-every 1000 ${EXTRA:-} \
    > "$OUT/train_var_rename.log" 2>&1
rc=$?
grep -E "^(model:|trained|  probe|var_rename acc|  by hop|hf_check|report)" "$OUT/train_var_rename.log"
ls -l "$OUT/var_rename" 2>/dev/null | tail -n +2
echo "[gpu_varrename] rc=$rc in $(( $(date +%s) - start ))s"
exit $rc
