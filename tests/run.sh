#!/usr/bin/env bash
# The whole test suite from a fresh Debian 12 machine: installs what is missing, builds with
# warnings as errors, runs every test, then builds again with AddressSanitizer and
# UndefinedBehaviorSanitizer and runs the suite once more, then runs the fuzzers briefly.
#   tests/run.sh              everything
#   TIDEPOOL_SKIP_CONTAINER=1 tests/run.sh    without the podman image test
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/deploy/setup-debian.sh" test
jobs=$(nproc)
start=$SECONDS

section() { printf '\n==== %s (%ds)\n' "$*" $((SECONDS - start)); }
# The soak prints figures worth quoting; ctest keeps a passing test's output in its log.
soak_figures() { sed -n '/^soak: /,/RSS MiB/p' "$1/Testing/Temporary/LastTest.log" || true; }

section "build: warnings as errors"
cmake -S "$root" -B "$root/build/check" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DTIDEPOOL_WERROR=ON >/dev/null
cmake --build "$root/build/check" -j "$jobs"

exclude="bench-smoke"
[[ ${TIDEPOOL_SKIP_CONTAINER:-0} == 1 ]] && exclude="$exclude|container"
section "tests"
# --repeat: a test that fails intermittently is run again (up to 3 times) and reported;
# one that fails every time still fails the run.
ctest --test-dir "$root/build/check" --output-on-failure --repeat until-pass:3 -j "$jobs" -LE "$exclude"
soak_figures "$root/build/check"

section "build: AddressSanitizer + UndefinedBehaviorSanitizer"
cmake -S "$root" -B "$root/build/sanitize" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
      -DTIDEPOOL_WERROR=ON -DTIDEPOOL_SANITIZE=ON >/dev/null
cmake --build "$root/build/sanitize" -j "$jobs"
section "tests under sanitizers"
# The container test builds its own image from source: it has nothing to add here.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir "$root/build/sanitize" --output-on-failure --repeat until-pass:3 -j "$jobs" -LE "container|fuzz|bench-smoke"
soak_figures "$root/build/sanitize"

if [[ -x "$root/tests/fuzz/run.sh" ]]; then
  section "fuzzers"
  "$root/tests/fuzz/run.sh" "${TIDEPOOL_FUZZ_SECONDS:-30}"
fi
section "all passed"
