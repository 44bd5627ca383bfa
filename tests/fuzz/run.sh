#!/bin/sh
# run.sh [SECONDS] [TARGET...] - builds the libFuzzer targets with clang 14
# (-fsanitize=fuzzer,address,undefined) into build-fuzz/ and runs each for
# SECONDS (default 60) over a working corpus (build-fuzz/corpus/TARGET, seeded
# from tests/fuzz/corpus/TARGET). Crash, leak and timeout inputs land in
# build-fuzz/crashes/. Prints one summary line per target; exits 1 when any
# target found something. Run from the repository root (`make fuzz`).
set -u
SECS=${1:-60}
[ $# -gt 0 ] && shift
TARGETS=${*:-"safetensors config tokenizer_load tokenize chat slash"}
CLANG=${CLANG:-clang-14}
B=${FUZZ_BUILD:-build-fuzz}   # FUZZ_BUILD: another folder for a second run at once
mkdir -p $B
command -v "$CLANG" >/dev/null 2>&1 || { echo "fuzz: $CLANG missing (sh tools/deps.sh fuzz)"; exit 2; }

# The libraries, instrumented for coverage (fuzzer-no-link) and sanitizers.
CFLAGS="-fsanitize=fuzzer-no-link" make --no-print-directory BUILD=$B CC="$CLANG" SAN=1 OPT=-O1 \
    $B/libengine.a $B/librepl.a >$B/build.log 2>&1 || { tail -n 30 $B/build.log; echo "fuzz: building the libraries failed"; exit 1; }
PKGS="openblas libpcre2-8 libutf8proc ncursesw readline"
FLAGS="-std=c11 -O1 -g -march=native -pthread -D_GNU_SOURCE -Iengine -Iviz -Irepl $(pkg-config --cflags $PKGS)
 -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
LIBS="$B/librepl.a $B/libengine.a $(pkg-config --libs $PKGS) -lcjson -lm -lpthread"

bad=0
for t in $TARGETS; do
    src=tests/fuzz/fuzz_$t.c
    [ -f "$src" ] || { echo "fuzz: no target $t"; bad=1; continue; }
    # shellcheck disable=SC2086
    $CLANG $FLAGS -o $B/fuzz_$t "$src" $LIBS || { echo "fuzz: building $t failed"; bad=1; continue; }
    mkdir -p $B/corpus/$t $B/crashes
    log=$B/fuzz_$t.log
    # -timeout: an input taking over 10 s is a hang; -rss_limit_mb: a leak or blow-up.
    ./$B/fuzz_$t -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix=$B/crashes/$t- $B/corpus/$t tests/fuzz/corpus/$t >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -E '^#[0-9]+' "$log" | tail -n 1 | sed -n 's/.*cov: \([0-9]*\).*ft: \([0-9]*\).*corp: \([0-9]*\).*/cov \1 ft \2 corpus \3/p')
    if [ $rc -eq 0 ]; then
        echo "fuzz $t: ${SECS}s, ${execs:-?} executions, $cov, nothing found"
    else
        echo "fuzz $t: FOUND something (exit $rc) after ${execs:-?} executions; see $log and $B/crashes/"
        grep -E '^==[0-9]+==ERROR|^SUMMARY|runtime error|fuzz check failed|Test unit written' "$log" | head -n 5
        bad=1
    fi
done
exit $bad
