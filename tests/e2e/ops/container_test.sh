#!/usr/bin/env bash
# Container test: build the image from the repository's Dockerfile with podman, run it on the
# host network with a mounted config, push messages through it from the host, read /metrics,
# see it become healthy, stop it and see a graceful exit (code 0, drain logged).
#
# Usage: container_test.sh [SOURCE_DIR]     (root; see /work/shared/notes/containers.md)
# Needs Debian's podman buildah runc debootstrap (installed when missing) and python3-zmq.
# The debian:bookworm-slim base is built once with debootstrap and cached in podman's store
# (podman_image.sh). It also asserts the OCI labels and that the image holds no shell.
set -euo pipefail

SRC=$(cd "${1:-$(dirname "$0")/../../..}" && pwd)
PY=${TIDEPOOL_PYTHON:-/usr/bin/python3}
OPSCTL="$PY $(cd "$(dirname "$0")" && pwd)/opsctl.py"
IMAGE=localhost/tidepool
NAME=tidepool-e2e-$$
START=$(date +%s)
WORK=$(mktemp -d /tmp/tidepool-ops-container.XXXXXX)
PODMAN=(podman --runtime runc)

log() { echo "[$(date +%H:%M:%S)] $*"; }
fail() {
  echo "FAIL: $*" >&2
  if "${PODMAN[@]}" container exists "$NAME" 2>/dev/null; then
    echo "----- container logs -----" >&2
    "${PODMAN[@]}" logs "$NAME" 2>&1 | tail -40 >&2 || true
  fi
  exit 1
}
cleanup() {
  local rc=$?
  # Processes this script started: the background PULL peer and the container.
  if [[ -n "${PULL_PID:-}" ]] && kill -0 "$PULL_PID" 2>/dev/null; then kill "$PULL_PID" || true; fi
  # One name at a time: podman 4.3's `rm -f A B` removes neither when one is missing.
  local name
  for name in "$NAME" "$NAME-default"; do
    "${PODMAN[@]}" rm -f -t 5 "$name" >/dev/null 2>&1 || true
  done
  rm -rf "$WORK"
  log "container test $([[ $rc == 0 ]] && echo PASSED || echo FAILED) in $(( $(date +%s) - START ))s"
  exit "$rc"
}
trap cleanup EXIT

# 1-3. Tools, base image, the image from the repository's Dockerfile with the revision and
# date passed in; the version label is the Dockerfile's own (checked against CMake below).
# shellcheck source=podman_image.sh
source "$(dirname "$0")/podman_image.sh"
podman_tools
"$PY" -c 'import zmq' || fail "$PY has no zmq module (apt-get install python3-zmq)"
podman_base_image
REVISION=$(git -C "$SRC" rev-parse HEAD 2>/dev/null || echo unknown)
CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
podman_build_tidepool "$SRC" --build-arg REVISION="$REVISION" --build-arg CREATED="$CREATED"
SIZE=$(podman image inspect "$IMAGE" --format '{{.Size}}')
log "image built in ${BUILD_S}s; size $SIZE bytes ($(( SIZE / 1024 / 1024 )) MiB)"
log "what takes the space (podman history):"
podman history --format '{{.Size}}\t{{.CreatedBy}}' "$IMAGE" | cut -c1-110 | sed 's/^/    /'

# The image metadata the issue asks for (docker format keeps HEALTHCHECK).
cfg() { podman image inspect "$IMAGE" --format "$1"; }
[[ $(cfg '{{.Config.User}}') == tidepool* ]] || fail "image user is '$(cfg '{{.Config.User}}')'"
[[ $(cfg '{{json .Config.Healthcheck.Test}}') == *'"tidepool","healthcheck"'* ]] \
  || fail "image healthcheck is $(cfg '{{json .Config.Healthcheck}}')"
[[ $(cfg '{{json .Config.ExposedPorts}}') == *9464/tcp* ]] || fail "9464 not exposed"
[[ $(cfg '{{json .Config.Entrypoint}}') == '["tidepool"]' ]] || fail "entrypoint is not tidepool"
[[ $(cfg '{{json .Config.Env}}') == *TIDEPOOL_HTTP_LISTEN=0.0.0.0:9464* ]] \
  || fail "TIDEPOOL_HTTP_LISTEN=0.0.0.0:9464 not set in the image"
# OCI labels: version = CMake's project(VERSION), revision and created = what was passed.
label() { cfg "{{index .Config.Labels \"org.opencontainers.image.$1\"}}"; }
CMAKE_VERSION=$(sed -n 's/^project(tidepool VERSION \([0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")
[[ -n $CMAKE_VERSION ]] || fail "no project(tidepool VERSION ...) in CMakeLists.txt"
[[ $(label version) == "$CMAKE_VERSION" ]] \
  || fail "label version is '$(label version)', CMakeLists.txt says $CMAKE_VERSION"
[[ $(label revision) == "$REVISION" ]] || fail "label revision is '$(label revision)'"
[[ $(label created) == "$CREATED" ]] || fail "label created is '$(label created)'"
for key in source licenses title; do
  [[ -n $(label $key) ]] || fail "label org.opencontainers.image.$key is missing"
done
log "labels: version $(label version), revision $(label revision), created $(label created)," \
  "source $(label source), licenses $(label licenses)"
# Nothing but the runtime: no shell, no package manager in the image.
for probe in "/bin/sh -c true" "/usr/bin/apt-get --version" "/usr/bin/dpkg --version" \
             "/usr/bin/perl -e 1"; do
  read -r tool args <<<"$probe"
  # shellcheck disable=SC2086  # args are words
  if "${PODMAN[@]}" run --rm --ulimit nofile=1024:1024 --ulimit nproc=1000:1000 --network none \
       --entrypoint "$tool" "$IMAGE" $args >/dev/null 2>&1; then
    fail "$tool runs in the runtime image"
  fi
done
VERSION=$("${PODMAN[@]}" run --rm --ulimit nofile=1024:1024 --ulimit nproc=1000:1000 \
  --network none "$IMAGE" --version) || fail "tidepool --version in the image"
log "image: user $(cfg '{{.Config.User}}'), entrypoint tidepool, version: $VERSION"

# 4a. `docker run IMAGE` with nothing else: embedded default config, HTTP on 0.0.0.0:9464
# from the image's ENV, and the HEALTHCHECK probing it as 127.0.0.1. Its own network
# namespace (loopback only) keeps the fixed ports away from the host.
"${PODMAN[@]}" run -d --name "$NAME-default" --ulimit nofile=1024:1024 \
  --ulimit nproc=1000:1000 --network none "$IMAGE" >/dev/null 2>"$WORK/run-default.err" \
  || { cat "$WORK/run-default.err" >&2; fail "podman run (default config)"; }
for _ in $(seq 1 30); do
  "${PODMAN[@]}" healthcheck run "$NAME-default" >/dev/null 2>&1 && break
  sleep 1
done
[[ $("${PODMAN[@]}" inspect "$NAME-default" --format '{{.State.Health.Status}}') == healthy ]] \
  || { "${PODMAN[@]}" logs "$NAME-default" >&2; fail "default-config container never healthy"; }
"${PODMAN[@]}" stop -t 30 "$NAME-default" >/dev/null
CODE=$("${PODMAN[@]}" inspect "$NAME-default" --format '{{.State.ExitCode}}')
[[ $CODE == 0 ]] || fail "default-config container exited $CODE on podman stop"
log "no-argument run (embedded default, 0.0.0.0:9464): healthy, stopped with exit 0"

# 4b. Run it with a mounted config on free loopback ports (host network).
# Reserved until this script exits (opsctl.py hold-ports), so no test beside it takes them.
coproc PORTS { exec $OPSCTL hold-ports 3; }
read -r -t 30 HTTP FRONT BACK <&"${PORTS[0]}" || fail "no free ports from opsctl.py hold-ports"
cat >"$WORK/tidepool.json" <<EOF
{
  "http": {"listen": "127.0.0.1:$HTTP"},
  "log": {"level": "info", "format": "text"},
  "shutdown": {"drain_timeout_ms": 15000},
  "routes": [{
    "name": "ops",
    "frontend": {"type": "pull", "bind": ["tcp://127.0.0.1:$FRONT"], "connect": []},
    "backend": {"type": "push", "bind": [], "connect": ["tcp://127.0.0.1:$BACK"]},
    "queue": {"max_messages": 1000},
    "flush": {"interval_ms": 1000, "drain_rate": 40}
  }]
}
EOF
chmod 0644 "$WORK/tidepool.json"  # the image runs as a non-root user
"${PODMAN[@]}" run --rm --ulimit nofile=1024:1024 --ulimit nproc=1000:1000 --network none \
  -v "$WORK/tidepool.json:/etc/tidepool/tidepool.json:ro" "$IMAGE" \
  check-config /etc/tidepool/tidepool.json >"$WORK/check-config.out" 2>&1 \
  || { cat "$WORK/check-config.out" >&2; fail "check-config of the mounted file in the image"; }
# The image's TIDEPOOL_HTTP_LISTEN (0.0.0.0:9464) wins over the file; an empty value defers
# to the file, so both the server and the HEALTHCHECK must take http.listen from the
# mounted file (on the host network a fixed 9464 could clash).
# Hardened like deploy/docker-compose.yml: read-only root, no capabilities.
"${PODMAN[@]}" run -d --name "$NAME" --ulimit nofile=1024:1024 --ulimit nproc=1000:1000 \
  --read-only --cap-drop ALL --security-opt no-new-privileges \
  --network host -e TIDEPOOL_HTTP_LISTEN= \
  -v "$WORK/tidepool.json:/etc/tidepool/tidepool.json:ro" "$IMAGE" >/dev/null \
  2>"$WORK/run.err" || { cat "$WORK/run.err" >&2; fail "podman run"; }
URL="http://127.0.0.1:$HTTP"
$OPSCTL wait-http "$URL/readyz" 200 30 || fail "tidepool in the container never became ready"
log "container $NAME ready: frontend :$FRONT, backend :$BACK (absent), http :$HTTP"

# 5. Messages through it from the host: queued while the backend is missing, then drained.
N=200
$OPSCTL push "tcp://127.0.0.1:$FRONT" "$N" msg || fail "push"
$OPSCTL wait-metric "$URL/metrics" tidepool_queue_messages route=ops == "$N" 20 \
  || fail "queue never reached $N"
$OPSCTL wait-metric "$URL/metrics" tidepool_backend_up route=ops == 0 5 || fail "backend_up"
FLUSHES0=$($OPSCTL metric "$URL/metrics" tidepool_flushes_total route=ops)
[[ $FLUSHES0 == absent ]] && FLUSHES0=0
$OPSCTL pull "tcp://127.0.0.1:$BACK" "$N" msg 30 || fail "backend did not get the $N messages"
$OPSCTL wait-metric "$URL/metrics" tidepool_queue_messages route=ops == 0 20 || fail "queue"
$OPSCTL wait-metric "$URL/metrics" tidepool_forwarded_messages_total route=ops == "$N" 10 \
  || fail "forwarded"
$OPSCTL wait-metric "$URL/metrics" tidepool_flushes_total route=ops ">=" "$(( FLUSHES0 + 1 ))" 10 \
  || fail "no flush counted"
$OPSCTL wait-metric "$URL/metrics" tidepool_flushed_messages_total route=ops == "$N" 10 \
  || fail "the $N queued messages were not all moved by flush passes"
log "/metrics from the container: $N queued with no backend, then all forwarded in order"

# 6. Health: Docker-format HEALTHCHECK runs `tidepool healthcheck` inside the container.
# podman schedules it with a systemd timer; without systemd (containers, CI) the status stays
# "starting" and podman logs "unable to get systemd connection": run the check explicitly.
health() { "${PODMAN[@]}" inspect "$NAME" --format '{{.State.Health.Status}}' 2>/dev/null \
             || "${PODMAN[@]}" inspect "$NAME" --format '{{.State.Healthcheck.Status}}'; }
for _ in $(seq 1 30); do
  [[ $(health) == healthy ]] && break
  "${PODMAN[@]}" healthcheck run "$NAME" >/dev/null 2>&1 || true
  sleep 1
done
[[ $(health) == healthy ]] || fail "health status is '$(health)', not healthy"
"${PODMAN[@]}" exec "$NAME" tidepool healthcheck >/dev/null \
  || fail "tidepool healthcheck inside the container exited non-zero"
# ...and it can fail: nothing listens on the discard port.
if "${PODMAN[@]}" exec "$NAME" tidepool healthcheck --http 127.0.0.1:9 >/dev/null 2>&1; then
  fail "tidepool healthcheck against a dead address exited 0"
fi
log "health status: healthy (healthcheck uses http.listen from the mounted file)"

# 7. Graceful stop under `podman stop`: a backlog is draining (drain_rate 40/s) when SIGTERM
# arrives; tidepool (PID 1) must stop reading, deliver the rest, and exit 0.
M=150
$OPSCTL pull "tcp://127.0.0.1:$BACK" "$M" late 60 &
PULL_PID=$!
$OPSCTL wait-metric "$URL/metrics" tidepool_backend_up route=ops == 1 15 || fail "backend_up"
$OPSCTL push "tcp://127.0.0.1:$FRONT" "$M" late || fail "push"
$OPSCTL wait-metric "$URL/metrics" tidepool_queue_messages route=ops ">=" 40 10 \
  || fail "no backlog to drain at stop"
t=$(date +%s)
"${PODMAN[@]}" stop -t 30 "$NAME" >/dev/null || fail "podman stop"
STOP_S=$(( $(date +%s) - t ))
wait "$PULL_PID" || fail "the backend did not get all $M messages across the stop"
PULL_PID=
CODE=$("${PODMAN[@]}" inspect "$NAME" --format '{{.State.ExitCode}}')
"${PODMAN[@]}" logs "$NAME" >"$WORK/container.log" 2>&1 || true
[[ $CODE == 0 ]] || fail "exit code after podman stop is $CODE (137 = killed, no SIGTERM handling)"
grep -qi 'drain' "$WORK/container.log" || fail "no drain line in the container's log"
log "podman stop: backlog of $M delivered, exit 0 after ${STOP_S}s; log:"
grep -i 'drain' "$WORK/container.log" | sed 's/^/    /'

log "image size: $SIZE bytes ($(( SIZE / 1024 / 1024 )) MiB); build ${BUILD_S}s; total $(( $(date +%s) - START ))s"
