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
# A test that fails and then passes is a bug with a cause to find: it is run again (up to 3
# runs in all) so one flake does not hide the rest of the run, and named at the end.
retried=()
run_ctest() {
  local dir=$1
  shift
  ctest --test-dir "$dir" --output-on-failure -j "$jobs" "$@" && return 0
  local failed
  failed=$(cut -d: -f2 "$dir/Testing/Temporary/LastTestsFailed.log" | tr '\n' ' ')
  for attempt in 2 3; do
    printf '\n==== run %d of the tests that failed: %s\n' "$attempt" "$failed"
    if ctest --test-dir "$dir" --output-on-failure --rerun-failed "$@"; then
      retried+=("$failed(${dir##*/}, passed on run $attempt)")
      return 0
    fi
  done
  return 1
}
report_retries() {
  if ((${#retried[@]})); then
    printf 'TESTS THAT NEEDED A RETRY (flaky: find the cause): %s\n' "${retried[*]}"
  else
    echo "no test needed a retry"
  fi
}
trap report_retries EXIT
# The soak prints figures worth quoting; ctest keeps a passing test's output in its log.
soak_figures() { sed -n '/^soak: /,/RSS MiB/p' "$1/Testing/Temporary/LastTest.log" || true; }

section "build: warnings as errors"
cmake -S "$root" -B "$root/build/check" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DTIDEPOOL_WERROR=ON >/dev/null
cmake --build "$root/build/check" -j "$jobs"

exclude="bench-smoke"
[[ ${TIDEPOOL_SKIP_CONTAINER:-0} == 1 ]] && exclude="$exclude|container"
section "tests"
run_ctest "$root/build/check" -LE "$exclude"
soak_figures "$root/build/check"

section "build: AddressSanitizer + UndefinedBehaviorSanitizer"
cmake -S "$root" -B "$root/build/sanitize" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
      -DTIDEPOOL_WERROR=ON -DTIDEPOOL_SANITIZE=ON >/dev/null
cmake --build "$root/build/sanitize" -j "$jobs"
section "tests under sanitizers"
# The container test builds its own image from source: it has nothing to add here.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
run_ctest "$root/build/sanitize" -LE "container|fuzz|bench-smoke"
soak_figures "$root/build/sanitize"

if [[ -x "$root/tests/fuzz/run.sh" ]]; then
  section "fuzzers"
  "$root/tests/fuzz/run.sh" "${TIDEPOOL_FUZZ_SECONDS:-30}"
fi
section "all passed"
