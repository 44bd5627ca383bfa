#!/bin/bash
# gpu_batch.sh - everything that needs the GPU machine (PyTorch, transformers,
# tokenizers), in one unattended run: reference fixtures for the engine, the
# tokenizer and the chat templates, training of the bundled models, and
# transformers references for the trained models. Each part logs to
# $WORK/logs and is tarred into $OUT as soon as it is done, so a run cut short
# still returns what finished.
#   usage (repository root, on the GPU machine): OUT=/some/dir bash tools/gpu_batch.sh
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:?set OUT}
WORK=${WORK:-/tmp/gpu_batch}
export MIN_CHAT=${MIN_CHAT:-3.75} MIN_VAR=${MIN_VAR:-3.75} MIN_IND=${MIN_IND:-1.5}
mkdir -p "$WORK/logs" "$WORK/ref" "$WORK/tok" "$WORK/tpl" "$WORK/models"
start=$(date +%s)
stamp() { echo "[$(( $(date +%s) - start ))s] $*"; }
pack() { # pack NAME DIR...: tar into $OUT (each archive < 16 MiB)
    local name=$1; shift
    tar -czf "$OUT/$name.tgz" "$@" && stamp "packed $name ($(du -h "$OUT/$name.tgz" | cut -f1))"
}

stamp "python: $(python3 -c 'import torch, transformers, tokenizers; print(torch.__version__, transformers.__version__, tokenizers.__version__, torch.cuda.get_device_name(0))' 2>&1)"

# 1. training in the background (the GPU is shared by three processes)
( LOGS="$WORK/logs" bash tools/gpu_train.sh "$WORK/models" > "$WORK/logs/train.log" 2>&1; echo "rc=$?" >> "$WORK/logs/train.log" ) &
train_pid=$!

# CUDA build (CPU only) beside the training; the checks run after it.
( bash tools/gpu_check.sh --build "$WORK/cuda" > "$WORK/logs/cuda_build.log" 2>&1 ) &
cuda_build_pid=$!

# 2. reference fixtures, meanwhile (CPU-heavy parts use the machine's 16 cores)
( python3 tools/make_fixtures.py --out "$WORK/ref" > "$WORK/logs/fixtures.log" 2>&1; echo "rc=$?" >> "$WORK/logs/fixtures.log" ) &
fx_pid=$!
( python3 tools/ref_tokenizers.py --tokenizers .cache/tokenizers --corpus tests/data/tokenizer_corpus.json \
      --out "$WORK/tok" > "$WORK/logs/tokenizers.log" 2>&1; echo "rc=$?" >> "$WORK/logs/tokenizers.log"
  gzip -dc .carry/data/kjv.txt.gz > "$WORK/kjv.txt"
  python3 tools/hf_tok_speed.py .cache/tokenizers/llama3/tokenizer.json "$WORK/kjv.txt" \
      >> "$WORK/logs/tokenizers.log" 2>&1 ) &
tok_pid=$!
( python3 tools/ref_templates.py --out "$WORK/tpl" > "$WORK/logs/templates.log" 2>&1; echo "rc=$?" >> "$WORK/logs/templates.log" ) &
tpl_pid=$!

# $OUT takes at most 8 files: fixtures, logs (re-packed as the run goes on),
# three models, the bundled-model references and the CUDA logs.
wait $fx_pid;  stamp "fixtures done"
wait $tok_pid; stamp "tokenizers done"
wait $tpl_pid; stamp "templates done"
pack fixtures -C "$WORK" ref tok tpl
pack logs -C "$WORK" logs

wait $train_pid; stamp "training done"
# Pack the weights first (they are what a cut-short run must not lose).
for m in chat var_rename induction; do
    [ -f "$WORK/models/$m/model.safetensors" ] && pack "model_$m" -C "$WORK/models" "$m"
done
prompt_chat='<|im_start|>user
What does harbor mean?<|im_end|>
<|im_start|>assistant
'
prompt_var_rename='3>a;7>b;a>c;b>d;c>e;e>f;d>g;'
prompt_induction='qX7mKp2zRtqX7mKp2zRt'
for m in chat var_rename induction; do
    [ -f "$WORK/models/$m/model.safetensors" ] || { stamp "no model $m"; continue; }
    eval "prompt=\$prompt_$m"
    python3 tools/make_fixtures.py --from "$WORK/models/$m" --name "bundled-$m" --out "$WORK/ref_bundled" \
        --prompt "$prompt" >> "$WORK/logs/fixtures_bundled.log" 2>&1
done
pack fixtures_bundled -C "$WORK" ref_bundled
pack logs -C "$WORK" logs

# 3. the CUDA backend, on the GPU alone now that training is over
wait $cuda_build_pid
REF_DIR="$WORK/ref" bash tools/gpu_check.sh "$WORK/cuda" > "$WORK/logs/cuda_check.log" 2>&1
pack cuda -C "$WORK" cuda logs/cuda_build.log logs/cuda_check.log
pack logs -C "$WORK" logs
stamp "all done"
