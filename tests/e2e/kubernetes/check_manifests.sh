#!/usr/bin/env bash
# Schema check of the Kubernetes kit, offline once installed: installs the vendored
# package.json/package-lock.json (kubernetes-models, the prometheus-operator CRD models, yaml)
# into WORK_DIR with `npm ci` when the lock changed, runs validate_manifests.js with its
# self-test, and has the real binary check the ConfigMap's route config.
# Usage: check_manifests.sh SOURCE_DIR WORK_DIR TIDEPOOL_BINARY VERSION
set -euo pipefail
SRC=$1 WORK=$2 TIDEPOOL=$3 VERSION=$4
HERE="$SRC/tests/e2e/kubernetes"
KIT="$SRC/deploy/kubernetes"

command -v node >/dev/null && command -v npm >/dev/null \
  || { echo "FAIL: node and npm are needed (deploy/setup-debian.sh test installs them)" >&2
       exit 1; }
mkdir -p "$WORK"
if [[ ! -d $WORK/node_modules ]] || ! cmp -s "$HERE/package-lock.json" "$WORK/installed-lock.json"
then
  cp "$HERE/package.json" "$HERE/package-lock.json" "$WORK/"
  echo "npm ci in $WORK"
  (cd "$WORK" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
  cp "$HERE/package-lock.json" "$WORK/installed-lock.json"
fi
cp "$HERE/validate_manifests.js" "$WORK/"
node "$WORK/validate_manifests.js" "$KIT" "$VERSION" --self-test

# The route config in the ConfigMap, through tidepool's own checker (as at the sidecar's start).
node -e '
  const YAML = require(process.argv[1] + "/node_modules/yaml");
  const text = require("fs").readFileSync(process.argv[2], "utf8");
  process.stdout.write(YAML.parse(text).data["tidepool.json"]);
' "$WORK" "$KIT/tidepool-config.yaml" >"$WORK/tidepool.json"
"$TIDEPOOL" check-config "$WORK/tidepool.json" >"$WORK/check-config.out" 2>&1 \
  || { cat "$WORK/check-config.out" >&2; echo "FAIL: tidepool check-config of the ConfigMap" >&2
       exit 1; }
echo "tidepool check-config: the ConfigMap's tidepool.json is valid"
