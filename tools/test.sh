#!/usr/bin/env bash
# test.sh - runs every test: installs dependencies, checks the C formatting
# (tools/check-format.sh) and the include graph (tools/check-includes.sh), builds with warnings
# as errors, runs the suite with ctest, then builds again with ASan+UBSan (clang) and runs the
# suite and the libFuzzer targets there. Exit status is non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=$(nproc)

bash tools/install-deps.sh || exit 1

# moto_server (the S3 test server) comes with the machine image's pyenv python3, whose shims
# may be missing from PATH in a non-login shell: find it there too.
if ! command -v moto_server >/dev/null 2>&1; then
    for dir in "${PYENV_ROOT:-$HOME/.pyenv}/shims" /root/.pyenv/shims; do
        if [ -x "$dir/moto_server" ]; then
            export PATH="$PATH:$dir"
            break
        fi
    done
fi
command -v moto_server >/dev/null 2>&1 || echo "test.sh: warning: moto_server not found; S3 tests will fail"

passed=0
failed=0
# s_ctest DIR: runs ctest in DIR and adds its counts to the totals.
s_ctest() {
    local log
    log=$(mktemp)
    (cd "$1" && ctest --output-on-failure --timeout 900 </dev/null) 2>&1 | tee "$log"
    local line total bad
    line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -1)
    rm -f "$log"
    if [ -z "$line" ]; then
        echo "test.sh: ctest in $1 printed no summary"
        failed=$((failed + 1))
        return
    fi
    bad=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
    total=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$line")
    passed=$((passed + total - bad))
    failed=$((failed + bad))
}

echo "== format (clang-format, .clang-format)"
if bash tools/check-format.sh; then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
fi

echo "== includes (no circles, module include rules)"
if bash tools/check-includes.sh; then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
fi

echo "== release build (gcc, warnings are errors)"
cmake -S . -B build -DSHOAL_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || exit 1
cmake --build build -j "$jobs" || exit 1
s_ctest build

echo "== sanitizer build (clang, ASan+UBSan, libFuzzer targets)"
CC=clang cmake -S . -B build-asan -DSHOAL_WERROR=ON -DSHOAL_SANITIZE=ON -DSHOAL_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=Debug >/dev/null || exit 1
cmake --build build-asan -j "$jobs" || exit 1
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
s_ctest build-asan

echo "== fuzzing (${SHOAL_FUZZ_SECONDS:-30} s per target)"
for target in build-asan/tests/fuzz/fuzz_*; do
    [ -x "$target" ] || continue
    name=$(basename "$target")
    corpus=$(mktemp -d)
    cp "$root/tests/fuzz/$name"/* "$corpus"/ 2>/dev/null || true
    if "$target" -max_total_time="${SHOAL_FUZZ_SECONDS:-30}" -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="build-asan/$name-" "$corpus" >"build-asan/$name.log" 2>&1; then
        echo "fuzz $name: ok ($(grep -Eo 'stat::number_of_executed_units: [0-9]+' \
            "build-asan/$name.log" | grep -Eo '[0-9]+' || echo '?') runs)"
        passed=$((passed + 1))
    else
        echo "fuzz $name: FAILED"
        tail -40 "build-asan/$name.log"
        failed=$((failed + 1))
    fi
    rm -rf "$corpus"
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
