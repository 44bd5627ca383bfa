#!/bin/bash
# gpu_train.sh - trains the three bundled models at once on one GPU (three
# processes sharing it), each for a wall-clock budget, and writes their Hugging
# Face folders under OUTDIR; each process then evaluates its model and checks it
# against transformers. Logs and JSON reports go to LOGS (default OUTDIR/../logs).
#   usage (repository root, GPU machine, .carry/data filled by tools/data_prep.py):
#     bash tools/gpu_train.sh OUTDIR
#   budgets in minutes of training (evaluation and checks add ~0.5-1 min):
#     MIN_CHAT=3.75 MIN_VAR=3.75 MIN_IND=1.5
# Exit status: 0 when all three folders were written, 1 otherwise.
set -u
OUT=${1:?usage: gpu_train.sh OUTDIR}
LOGS=${LOGS:-$(dirname "$OUT")/logs}
DATA=${DATA:-.carry/data}
PY=${PY:-python3}
MIN_CHAT=${MIN_CHAT:-3.75}
MIN_VAR=${MIN_VAR:-3.75}
MIN_IND=${MIN_IND:-1.5}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT" "$LOGS"
start=$(date +%s)
stamp() { echo "[gpu_train $(( $(date +%s) - start ))s] $*"; }

stamp "data: $(cat "$DATA/SOURCES" 2>/dev/null | tr '\n' ';' || echo "MISSING $DATA")"
stamp "budgets (min): chat $MIN_CHAT, var_rename $MIN_VAR, induction $MIN_IND"

run() { # run TASK MINUTES EXTRA...
    local task=$1 min=$2; shift 2
    "$PY" tools/train.py "$task" --out "$OUT/$task" --minutes "$min" --data "$DATA" \
        --report "$LOGS/${task}_report.json" "$@" > "$LOGS/train_$task.log" 2>&1
    echo "rc=$?" >> "$LOGS/train_$task.log"
}
run chat "$MIN_CHAT" --log-every 200 & p1=$!
run var_rename "$MIN_VAR" --log-every 500 & p2=$!
run induction "$MIN_IND" --log-every 200 & p3=$!
wait $p3; stamp "induction finished"
wait $p2; stamp "var_rename finished"
wait $p1; stamp "chat finished"

rc=0
for t in chat var_rename induction; do
    echo "===== $t: $(tail -n 1 "$LOGS/train_$t.log")"
    grep -E "^(trained|eval|var_rename acc|  by hop|induction:|  layer|hf_check|tokenizer|train_bpe|piecewise|built|tokenized|model:|attention from)" \
        "$LOGS/train_$t.log" | head -n 60
    if [ -f "$OUT/$t/model.safetensors" ]; then
        ls -l "$OUT/$t" | tail -n +2
        echo "folder: $(du -sb "$OUT/$t" | cut -f1) bytes"
    else
        echo "NO FOLDER for $t"; rc=1
    fi
done
stamp "done rc=$rc"
exit $rc
