#!/bin/sh
# run.sh BUILD - runs every unit test binary in BUILD/tests, then every
# end-to-end script in tests/e2e, and ends with one "N passed, N failed" line.
# Tests needing real tokenizer files fetch them first (tests/fetch_tokenizers.sh).
BUILD=${1:-build}
export ATTNSCOPE_BIN="$PWD/$BUILD/attnscope"
pass=0; fail=0; failed=""

sh tests/fetch_tokenizers.sh || { echo "run.sh: fetching the tokenizer files failed"; fail=$((fail + 1)); failed="$failed fetch_tokenizers"; }

for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    out=$("$t" 2>&1); rc=$?
    echo "$out"
    p=$(echo "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | awk '{s+=$1} END {print s+0}')
    f=$(echo "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | awk '{s+=$1} END {print s+0}')
    pass=$((pass + p)); fail=$((fail + f))
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then fail=$((fail + 1)); fi
    [ $rc -ne 0 ] && failed="$failed $name"
done

for e in tests/e2e/*.sh; do
    [ -f "$e" ] || continue
    name=$(basename "$e" .sh)
    echo "[ RUN      ] e2e $name"
    if sh "$e" "$BUILD"; then
        echo "[       OK ] e2e $name"; pass=$((pass + 1))
    else
        echo "[  FAILED  ] e2e $name"; fail=$((fail + 1)); failed="$failed $name"
    fi
done

[ -n "$failed" ] && echo "failed:$failed"
echo "tests: $pass passed, $fail failed"
[ $fail -eq 0 ]
