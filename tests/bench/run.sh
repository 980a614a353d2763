#!/usr/bin/env bash
# tidepool benchmark: direct vs zmq_proxy vs tidepool, one table (see README.md, "Performance").
# Usage: tests/bench/run.sh [--reps N] [--only pipeline,pingpong,outstanding,backlog] [...]
#        tests/bench/run.sh --only scale [--plot DIR]   how cost grows (5-10 min; opt-in)
#        tests/bench/run.sh --help      (all options)
#        tests/bench/run.sh spool [--reps N] [...]   spool throughput instead (spool.py --help)
# Builds the benchmark programs and tidepool in build-bench (Release) unless --bin-dir and
# --tidepool are given. TIDEPOOL_BIN=/path/to/tidepool uses an existing binary instead.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${TIDEPOOL_BENCH_BUILD:-$root/build-bench}
jobs=${JOBS:-2}
python=/usr/bin/python3  # Debian's python3 (the one with python3-zmq)
[[ -x $python ]] || python=python3

script=bench.py
if [[ ${1:-} == spool ]]; then
  script=spool.py
  shift
fi
args=("$@")
have_bin_dir=0
have_tidepool=0
for a in "$@"; do
  case $a in
    --bin-dir) have_bin_dir=1 ;;
    --tidepool) have_tidepool=1 ;;
    -h|--help) exec "$python" "$here/$script" --help ;;
  esac
done

log() { echo "[run.sh] $*" >&2; }

# ccache when there is one (shared and warm on the team's machine); a fresh CI box has none.
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi

if (( !have_bin_dir )); then
  mkdir -p "$build"
  bin_dir=""
  # Preferred: the project's own build, so tidepool and the programs share one configuration.
  if cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" \
       >"$build/configure.log" 2>&1 \
     && ninja -C "$build" -j"$jobs" bench_client bench_zmq_proxy >&2; then
    bin_dir=$build/tests/bench
  else
    log "project does not configure/build (see $build/configure.log); building the bench standalone"
    cmake -S "$here" -B "$build/standalone" -G Ninja -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" >&2
    ninja -C "$build/standalone" -j"$jobs" >&2
    bin_dir=$build/standalone
  fi
  args+=(--bin-dir "$bin_dir")
fi

if (( !have_tidepool )); then
  tidepool=${TIDEPOOL_BIN:-}
  if [[ -z $tidepool ]]; then
    if [[ -f $build/build.ninja ]] && ninja -C "$build" -j"$jobs" tidepool >&2; then
      tidepool=$build/proxy/tidepool
    elif [[ -x $root/build/proxy/tidepool ]]; then
      log "could not build tidepool in $build; using $root/build/proxy/tidepool"
      tidepool=$root/build/proxy/tidepool
    else
      log "no tidepool binary: its column will be n/a"
    fi
  fi
  [[ -n $tidepool ]] && args+=(--tidepool "$tidepool")
fi

exec "$python" "$here/$script" "${args[@]}"
