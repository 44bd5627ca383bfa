#!/bin/sh
# valgrind.sh - the whole test suite (unit, reference and end-to-end, the tmux
# ones included) under valgrind memcheck. Builds build-valgrind/ without
# AVX-512 (valgrind 3.19 cannot decode it; OpenBLAS is pinned to its Haswell
# kernels for the same reason), then puts a wrapper in build-valgrind/vg/ for
# attnscope and every test binary and runs tests/run.sh on that folder. Any
# memcheck error or definite/indirect leak makes the program exit 99 (so the
# test fails) and leaves its report in build-valgrind/logs/. Run from the
# repository root (`make valgrind`).
set -u
B=build-valgrind
command -v valgrind >/dev/null 2>&1 || { echo "valgrind: not installed (sh tools/deps.sh valgrind)"; exit 2; }
mkdir -p $B
TESTS=$(for f in tests/unit/test_*.c; do t=$(basename "$f" .c); printf '%s ' "$B/tests/$t"; done)
# shellcheck disable=SC2086
CFLAGS="-mno-avx512f" make --no-print-directory BUILD=$B OPT=-O1 $B/attnscope $TESTS >$B/build.log 2>&1 ||
    { tail -n 30 $B/build.log; echo "valgrind: build failed"; exit 1; }

rm -rf $B/vg $B/logs
mkdir -p $B/vg/tests $B/logs
wrap() {   # wrap REAL WRAPPER
    cat > "$2" <<EOW
#!/bin/sh
ATTNSCOPE_NO_HEAP_CHECK=1 OPENBLAS_CORETYPE=Haswell exec valgrind -q --error-exitcode=99 \\
    --leak-check=full --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \\
    --log-file="$PWD/$B/logs/$(basename "$1").%p.log" "$PWD/$1" "\$@"
EOW
    chmod +x "$2"
}
wrap $B/attnscope $B/vg/attnscope
for t in $TESTS; do wrap "$t" "$B/vg/tests/$(basename "$t")"; done

start=$(date +%s)
sh tests/run.sh $B/vg
rc=$?
echo "valgrind: suite took $(( $(date +%s) - start )) s"
bad=0
for l in $B/logs/*.log; do
    [ -s "$l" ] || continue
    bad=$((bad + 1))
    echo "----- $l"; head -n 40 "$l"
done
[ $bad -eq 0 ] && echo "valgrind: no memcheck reports" || echo "valgrind: $bad processes with memcheck reports (build-valgrind/logs/)"
[ $rc -eq 0 ] && [ $bad -eq 0 ]
