#!/usr/bin/env python3
"""Writes the copies of deploy/kubernetes/client.yaml (with its ConfigMap) and worker.yaml
that kube_play_test.sh plays with podman 4.3, and prints the sidecar's probes.

podman 4.3 predates native sidecars (Kubernetes 1.28): it runs every init container to
completion before the pod's containers and refuses one with probes. So the copy moves the
tidepool init container to the front of `containers` (same pod, same network namespace, same
volumes; what changes is only that nothing orders start and stop, which the test does itself,
in Kubernetes' order). Its probes are removed from the copy (podman would run `curl` inside
the image for them, which the image does not have; kubelet probes from outside) and printed,
for the test to GET them from outside as kubelet does. The worker Service gets a hostAlias
(podman has no Services). Container ports are dropped from both copies: podman 4.3 publishes
every containerPort on the host (hostPort = containerPort), which Kubernetes does not do and
which would clash on a shared machine; the test reaches the pods at their own addresses.
For a backlog that is still draining when the sidecar is stopped,
the copy caps the drain rate below the client's rate (flush.drain_rate, RATE).

Usage: kube_play_prepare.py worker KIT_DIR OUT_YAML
       kube_play_prepare.py client KIT_DIR OUT_YAML WORKER_IP CLIENT_RATE DRAIN_RATE
The client form prints one line per probe, "<probe> <path> <port>", then "grace <seconds>"
and "drain_timeout_ms <ms>".
"""

import json
import sys

import yaml


def unpublish(pod_spec):
    for container in pod_spec["containers"]:
        container.pop("ports", None)


def worker(kit, out):
    with open(f"{kit}/worker.yaml") as f:
        docs = [d for d in yaml.safe_load_all(f) if d["kind"] == "Deployment"]
    for deployment in docs:
        unpublish(deployment["spec"]["template"]["spec"])
    with open(out, "w") as f:
        yaml.safe_dump_all(docs, f, sort_keys=False)


def client(kit, out, worker_ip, rate, drain_rate):
    with open(f"{kit}/client.yaml") as f:
        deployment = yaml.safe_load(f)
    with open(f"{kit}/tidepool-config.yaml") as f:
        config_map = yaml.safe_load(f)
    with open(f"{kit}/worker.yaml") as f:
        service = [d for d in yaml.safe_load_all(f) if d["kind"] == "Service"][0]

    spec = deployment["spec"]["template"]["spec"]
    sidecar = [c for c in spec["initContainers"] if c["name"] == "tidepool"][0]
    spec["initContainers"] = [c for c in spec["initContainers"] if c is not sidecar]
    if not spec["initContainers"]:
        del spec["initContainers"]
    del sidecar["restartPolicy"]
    ports = {p["name"]: p["containerPort"] for p in sidecar.get("ports", [])}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = sidecar.pop(probe)["httpGet"]
        print(probe, get["path"], ports.get(get["port"], get["port"]))
    spec["containers"].insert(0, sidecar)
    unpublish(spec)
    spec["hostAliases"] = [{"ip": worker_ip, "hostnames": [service["metadata"]["name"]]}]
    for container in spec["containers"]:
        for env in container.get("env", []):
            if env["name"] == "RATE":
                env["value"] = rate

    config = json.loads(config_map["data"]["tidepool.json"])
    for route in config["routes"]:
        route.setdefault("flush", {})["drain_rate"] = int(drain_rate)
    config_map["data"]["tidepool.json"] = json.dumps(config, indent=2)

    with open(out, "w") as f:
        yaml.safe_dump_all([config_map, deployment], f, sort_keys=False)
    print("grace", spec["terminationGracePeriodSeconds"])
    print("drain_timeout_ms", config["shutdown"]["drain_timeout_ms"])


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"] and len(sys.argv) == 4:
        worker(*sys.argv[2:4])
    elif sys.argv[1:2] == ["client"] and len(sys.argv) == 7:
        client(*sys.argv[2:7])
    else:
        sys.exit(__doc__)
