#!/usr/bin/env bash
# The README's test command: install dependencies, build (warnings are
# errors), run every test; then build with ASan+UBSan and run the whole suite
# again. Prints ctest's summary and a final `N passed, N failed` line.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash scripts/install-deps.sh || { echo "install-deps failed"; echo "0 passed, 1 failed"; exit 1; }

jobs=$(nproc 2>/dev/null || echo 2)
total_pass=0
total_fail=0
run_suite() { # name builddir cmake-args...
    local name=$1 dir=$2
    shift 2
    echo "=== [$name] configure + build in $dir"
    if ! cmake -S . -B "$dir" -DGH_WERROR=ON "$@" >"$dir.cmake.log" 2>&1; then
        cat "$dir.cmake.log"; total_fail=$((total_fail + 1)); return
    fi
    if ! cmake --build "$dir" -j"$jobs" >"$dir.build.log" 2>&1; then
        tail -60 "$dir.build.log"; total_fail=$((total_fail + 1)); return
    fi
    echo "=== [$name] ctest"
    (cd "$dir" && ctest --output-on-failure --timeout 900 -j1) | tee "$dir.ctest.log"
    local p f
    p=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .* Passed' "$dir.ctest.log")
    f=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .*(\*\*\*|Failed|Not Run|Timeout|Exception)' "$dir.ctest.log")
    if ! grep -qE 'tests passed' "$dir.ctest.log"; then
        [ "$f" -eq 0 ] && f=1
    fi
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
}

run_suite release build-ci -DCMAKE_BUILD_TYPE=RelWithDebInfo
if [ "${GH_SKIP_ASAN:-0}" != 1 ]; then
    run_suite asan build-ci-asan -DCMAKE_BUILD_TYPE=Debug -DGH_SANITIZE=ON
fi
echo "${total_pass} passed, ${total_fail} failed"
[ "$total_fail" -eq 0 ]
