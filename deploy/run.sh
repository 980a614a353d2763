#!/usr/bin/env bash
# Installs what is missing, builds tidepool (Release) and runs it; arguments go to tidepool.
#   deploy/run.sh                      the embedded default config
#   deploy/run.sh --config FILE        your config
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/deploy/setup-debian.sh" run
build="$root/build/release"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTIDEPOOL_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" --target tidepool >/dev/null
exec "$build/proxy/tidepool" "$@"
