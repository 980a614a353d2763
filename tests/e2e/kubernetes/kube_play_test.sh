#!/usr/bin/env bash
# The Kubernetes kit run for real with `podman kube play`: the worker Deployment, then the
# client pod with tidepool as its sidecar (sharing the pod's network namespace, as in
# Kubernetes). Proves: the client's messages flow through the sidecar to the worker; the
# probes' paths answer on the probes' port (and /readyz 503 while draining); and stopping the
# pod the way Kubernetes stops a pod with a native sidecar (client first, then the sidecar:
# SIGTERM, drain, exit 0) loses nothing: the worker gets every message the client sent, once,
# including a backlog that was still draining when the sidecar got SIGTERM.
#
# podman 4.3 differs from a kubelet in four ways the test works around (kube_play_prepare.py
# writes the copies it plays): no native sidecars (the sidecar is moved into `containers`);
# no Services (a hostAlias names the worker pod); every containerPort is published on the
# host (the copies drop them; the test uses the pods' addresses); and `podman kube down` kills
# containers at once (SIGKILL, no grace period; podman >= 5.1 stops them gracefully), so the
# test stops the containers itself first, client then sidecar, the sidecar with the
# manifest's terminationGracePeriodSeconds, and then runs kube down.
#
# Usage: kube_play_test.sh SOURCE_DIR VERSION     (root; see /work/shared/notes/containers.md)
set -euo pipefail

SRC=$(cd "$1" && pwd)
VERSION=$2
PY=${TIDEPOOL_PYTHON:-/usr/bin/python3}
HERE="$SRC/tests/e2e/kubernetes"
KIT="$SRC/deploy/kubernetes"
OPSCTL="$PY $SRC/tests/e2e/ops/opsctl.py"
START=$(date +%s)
WORK=$(mktemp -d /tmp/tidepool-kube-play.XXXXXX)
CLIENT_POD=tidepool-client-pod-0
WORKER_POD=tidepool-worker-pod-0
CLIENT_RATE=400   # messages/s from the client
DRAIN_RATE=200    # the sidecar's flush.drain_rate in the played copy: a backlog builds

# runc with rlimits at or below this machine's hard limits (containers.md), for every
# container kube play creates; only this file is read while it is set.
cat >"$WORK/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]
[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF="$WORK/containers.conf"

log() { echo "[$(date +%H:%M:%S)] $*"; }
fail() {
  echo "FAIL: $*" >&2
  local c
  for c in "$CLIENT_POD-tidepool" "$CLIENT_POD-client" "$WORKER_POD-worker"; do
    if podman container exists "$c" 2>/dev/null; then
      echo "----- $c logs -----" >&2
      podman logs "$c" 2>&1 | tail -20 >&2 || true
    fi
  done
  exit 1
}
cleanup() {
  local rc=$?
  if [[ -n ${STOP_PID:-} ]]; then wait "$STOP_PID" 2>/dev/null || true; fi
  local played
  for played in "$WORK/client-play.yaml" "$WORK/worker-play.yaml"; do
    if [[ -f $played ]]; then podman kube down "$played" >/dev/null 2>&1 || true; fi
  done
  rm -rf "$WORK"
  log "kube play test $([[ $rc == 0 ]] && echo PASSED || echo FAILED) in $(( $(date +%s) - START ))s"
  exit "$rc"
}
trap cleanup EXIT

# The images the manifests name: tidepool from the repository's Dockerfile, the demo peers
# from deploy/kubernetes/demo (Debian's python3-zmq; the tidepool image stays small).
# shellcheck source=../ops/podman_image.sh
source "$SRC/tests/e2e/ops/podman_image.sh"
podman_tools
podman_base_image
podman_build_tidepool "$SRC"
podman tag "$TIDEPOOL_IMAGE" "localhost/tidepool:$VERSION"
nice -n 15 "${PODMAN_BUILD[@]}" -t "localhost/tidepool-demo-peer:$VERSION" "$KIT/demo" \
  >"$WORK/demo-build.log" 2>&1 || { tail -20 "$WORK/demo-build.log" >&2; fail "demo image"; }
SIZE=$(podman image inspect "$TIDEPOOL_IMAGE" --format '{{.Size}}')
log "images: tidepool:$VERSION ($SIZE bytes)," \
  "tidepool-demo-peer:$VERSION"

pod_ip() {
  local infra
  infra=$(podman pod inspect "$1" --format '{{.InfraContainerID}}')
  podman inspect "$infra" --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}'
}
worker_count() {  # the worker's last "unique=N duplicates=D" as "N D"
  podman logs "$WORKER_POD-worker" 2>/dev/null \
    | sed -n 's/.*unique=\([0-9]*\) duplicates=\([0-9]*\).*/\1 \2/p' | tail -1
}
wait_worker_unique() {  # N TIMEOUT: until the worker saw at least N distinct messages
  local deadline=$(( $(date +%s) + $2 )) got
  while :; do
    got=$(worker_count); got=${got%% *}
    (( ${got:-0} >= $1 )) && return 0
    (( $(date +%s) < deadline )) || return 1
    sleep 0.2
  done
}

# 1. The worker Deployment (podman skips the Service).
"$PY" "$HERE/kube_play_prepare.py" worker "$KIT" "$WORK/worker-play.yaml" \
  || fail "kube_play_prepare.py worker"
podman kube play "$WORK/worker-play.yaml" >"$WORK/play-worker.log" 2>&1 \
  || { cat "$WORK/play-worker.log" >&2; fail "kube play worker.yaml"; }
WORKER_IP=$(pod_ip "$WORKER_POD")
[[ -n $WORKER_IP ]] || fail "no IP for $WORKER_POD"
log "worker pod $WORKER_POD at $WORKER_IP"

# 2. The client pod with its sidecar.
"$PY" "$HERE/kube_play_prepare.py" client "$KIT" "$WORK/client-play.yaml" "$WORKER_IP" \
  "$CLIENT_RATE" "$DRAIN_RATE" >"$WORK/probes" || fail "kube_play_prepare.py"
GRACE=$(sed -n 's/^grace //p' "$WORK/probes")
DRAIN_MS=$(sed -n 's/^drain_timeout_ms //p' "$WORK/probes")
(( GRACE * 1000 > DRAIN_MS )) || fail "grace ${GRACE}s is not above drain_timeout_ms ${DRAIN_MS}"
podman kube play "$WORK/client-play.yaml" >"$WORK/play-client.log" 2>&1 \
  || { cat "$WORK/play-client.log" >&2; fail "kube play client.yaml"; }
CLIENT_IP=$(pod_ip "$CLIENT_POD")
[[ -n $CLIENT_IP ]] || fail "no IP for $CLIENT_POD"
log "client pod $CLIENT_POD at $CLIENT_IP: containers $(podman pod inspect "$CLIENT_POD" \
  --format '{{range .Containers}}{{.Name}} {{end}}')"

# 3. The probes, from outside the pod as kubelet sends them: each path on its port.
while read -r probe path port; do
  [[ $probe == *Probe ]] || continue
  $OPSCTL wait-http "http://$CLIENT_IP:$port$path" 200 60 \
    || fail "$probe: GET $path on :$port never answered 200"
  log "$probe: GET $path on :$port -> 200"
done <"$WORK/probes"
METRICS="http://$CLIENT_IP:9464/metrics"

# 4. Traffic: client -> sidecar (the pod's localhost) -> worker pod.
$OPSCTL wait-metric "$METRICS" tidepool_backend_up route=requests == 1 30 \
  || fail "the sidecar never connected to the worker"
$OPSCTL wait-metric "$METRICS" tidepool_forwarded_messages_total route=requests ">=" 100 30 \
  || fail "the sidecar forwarded fewer than 100 messages"
wait_worker_unique 100 30 || fail "the worker got fewer than 100 messages ($(worker_count))"
log "traffic flows: worker has $(worker_count | cut -d' ' -f1) messages"

# 5. A backlog (the client outruns drain_rate), then the stop in Kubernetes' order for a pod
# with a native sidecar: the client first (it stops sending and flushes what it sent).
$OPSCTL wait-metric "$METRICS" tidepool_queue_messages route=requests ">=" 300 30 \
  || fail "no backlog built up"
podman stop -t 30 "$CLIENT_POD-client" >/dev/null || fail "podman stop client"
SENT=$(podman logs "$CLIENT_POD-client" 2>&1 | sed -n 's/^client stopped sent=\([0-9]*\)$/\1/p')
[[ -n $SENT ]] || fail "the client did not report what it sent"
$OPSCTL wait-metric "$METRICS" tidepool_received_messages_total route=requests == "$SENT" 20 \
  || fail "the sidecar did not receive all $SENT messages the client sent"
BACKLOG=$($OPSCTL metric "$METRICS" tidepool_queue_messages route=requests)
(( BACKLOG > 0 )) || fail "the backlog drained before the sidecar was stopped; nothing to test"
log "client stopped after sending $SENT; sidecar received all, $BACKLOG still queued"

# ...then the sidecar: SIGTERM, drain, exit 0, within the manifest's grace period. Only the
# container: `podman pod stop` would stop the infra container at the same time, and podman
# tears the pod's network down with it while tidepool is still draining into it (seen: the
# drain "completed" into a dead connection, 1,212 messages never arrived). A kubelet keeps
# the pod's sandbox until its last container has exited.
# While it drains, its readiness fails (/readyz 503), as the readinessProbe needs.
t=$(date +%s)
podman stop -t "$GRACE" "$CLIENT_POD-tidepool" >/dev/null &
STOP_PID=$!
$OPSCTL wait-http "http://$CLIENT_IP:9464/readyz" 503 10 \
  || fail "/readyz did not answer 503 while the sidecar drained"
wait "$STOP_PID" || fail "podman stop sidecar"
STOP_PID=
STOP_S=$(( $(date +%s) - t ))
CODE=$(podman inspect "$CLIENT_POD-tidepool" --format '{{.State.ExitCode}}')
podman logs "$CLIENT_POD-tidepool" >"$WORK/tidepool.log" 2>&1 || true
[[ $CODE == 0 ]] || fail "the sidecar exited $CODE after SIGTERM (137: killed before draining)"
grep -q '"drained: exiting"\|drained: exiting' "$WORK/tidepool.log" \
  || { tail -5 "$WORK/tidepool.log" >&2; fail "the sidecar did not log a complete drain"; }
wait_worker_unique "$SENT" 30 || fail "the worker got $(worker_count), not all $SENT"
read -r UNIQUE DUPLICATES <<<"$(worker_count)"
(( UNIQUE == SENT )) || fail "the worker got $UNIQUE distinct messages, the client sent $SENT"
(( DUPLICATES == 0 )) || fail "the worker got $DUPLICATES duplicates"
log "sidecar: /readyz 503 while draining; drained $BACKLOG in ${STOP_S}s, exit 0;" \
  "worker: $UNIQUE of $SENT, 0 duplicates"
grep -i 'drain' "$WORK/tidepool.log" | sed 's/^/    /'

# 6. kube down removes both (the pods are already stopped).
podman kube down "$WORK/client-play.yaml" >/dev/null || fail "kube down client"
podman kube down "$WORK/worker-play.yaml" >/dev/null || fail "kube down worker"
! podman pod exists "$CLIENT_POD" || fail "$CLIENT_POD still exists after kube down"
log "kube down: pods removed; total $(( $(date +%s) - START ))s"
