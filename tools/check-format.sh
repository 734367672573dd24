#!/usr/bin/env bash
# check-format.sh - fails (exit 1) when a tracked C file differs from what clang-format makes of
# it with the project's .clang-format, and names each such file. `--fix` reformats them instead.
# Used by tools/test.sh; run it before a commit.
set -uo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang-format >/dev/null 2>&1; then
    echo "check-format: clang-format not found (tools/install-deps.sh installs it)"
    exit 1
fi
mapfile -t files < <(git ls-files '*.c' '*.h')
if [ "${1:-}" = "--fix" ]; then
    clang-format -i "${files[@]}"
    exit 0
fi
bad=()
for f in "${files[@]}"; do
    if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
        bad+=("$f")
    fi
done
if [ "${#bad[@]}" -gt 0 ]; then
    echo "check-format: ${#bad[@]} file(s) not formatted (fix: tools/check-format.sh --fix):"
    printf '  %s\n' "${bad[@]}"
    exit 1
fi
echo "check-format: ${#files[@]} files formatted"
