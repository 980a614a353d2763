#!/bin/sh
# Builds the libFuzzer targets with clang in their own build directory and runs each one for
# SECONDS over its seed corpus. Exit status is non-zero if any target finds a crash, leak,
# sanitizer report or invariant violation (the reproducer is left in BUILD/artifacts/).
#
# Usage: tests/fuzz/run.sh [SECONDS] [TARGET...]      (default: 60 seconds, all targets)
# Env:   TIDEPOOL_FUZZ_BUILD_DIR (default: <repo>/build-fuzz), JOBS (ninja -j, default 2),
#        CXX (default clang++)
# Needs: clang, libclang-rt-14-dev (libFuzzer and sanitizer runtimes), cmake, ninja-build.
set -eu

seconds=${1:-60}
[ $# -gt 0 ] && shift
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${TIDEPOOL_FUZZ_BUILD_DIR:-$root/build-fuzz}
targets=${*:-fuzz_field_sexpr fuzz_field_json fuzz_spool_record fuzz_crc32c fuzz_curve_key fuzz_config}

cmake -S "$here" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER="${CXX:-clang++}" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
# shellcheck disable=SC2086  # targets is a word list on purpose
ninja -C "$build" -j"${JOBS:-2}" $targets

status=0
for t in $targets; do
  mkdir -p "$build/corpus/$t" "$build/artifacts"
  echo "== $t: ${seconds}s"
  if "$build/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" \
      "$build/corpus/$t" "$here/corpus/$t" >"$build/$t.log" 2>&1; then
    grep -E '^stat::(number_of_executed_units|peak_rss_mb)|^Done' "$build/$t.log" || true
    echo "   corpus: $(find "$build/corpus/$t" -type f | wc -l) new inputs"
  else
    status=1
    echo "!! $t FAILED; log: $build/$t.log"
    tail -n 40 "$build/$t.log"
  fi
done
exit $status
