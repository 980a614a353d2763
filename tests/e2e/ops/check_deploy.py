#!/usr/bin/python3
"""The compose quick start hangs together.

Usage: check_deploy.py SOURCE_DIR

- `docker-compose config -q` (Debian's docker-compose) accepts deploy/docker-compose.yml;
- tidepool shares the client's network namespace, and Prometheus scrapes that service's
  name on the port the image exposes;
- Grafana's provisioning matches the compose mounts and the dashboard's datasource uid;
- the dashboard is well formed: unique panel ids, every panel inside the 24-column grid
  with no overlaps, every query target has a refId and an expression.
Stdlib only; run with /usr/bin/python3.
"""

import json
import os
import re
import shutil
import subprocess
import sys


def main():
    src = os.path.abspath(sys.argv[1])
    deploy = os.path.join(src, "deploy")
    errors = []

    def read(rel):
        with open(os.path.join(deploy, rel)) as f:
            return f.read()

    compose_path = os.path.join(deploy, "docker-compose.yml")
    tool = shutil.which("docker-compose")
    if not tool:
        errors.append("docker-compose not found (apt-get install docker-compose)")
    else:
        r = subprocess.run([tool, "-f", compose_path, "config", "-q"], capture_output=True,
                           text=True, timeout=60, cwd=deploy)
        if r.returncode != 0:
            errors.append(f"docker-compose config rejects {compose_path}:\n{r.stdout}{r.stderr}")
        else:
            print(f"docker-compose config: {compose_path} is valid")

    compose = read("docker-compose.yml")
    m = re.search(r'^  tidepool:\n(?:(?:    .*)?\n)*?    network_mode: "service:([a-z0-9_-]+)"',
                  compose, re.M)
    if not m:
        errors.append("tidepool service has no network_mode \"service:CLIENT\" (sidecar)")
    client = m.group(1) if m else None
    if client and not re.search(rf"^  {re.escape(client)}:\n", compose, re.M):
        errors.append(f"tidepool joins service {client!r}, which compose does not define")
    if "context: .." not in compose or not os.path.exists(os.path.join(src, "Dockerfile")):
        errors.append("tidepool service must build the repository's Dockerfile (context ..)")

    prom = read("prometheus/prometheus.yml")
    targets = re.findall(r'targets:\s*\[\s*"([^"]+)"', prom)
    if client and f"{client}:9464" not in targets:
        errors.append(f"prometheus.yml targets {targets}, expected {client}:9464 (tidepool "
                      f"lives in {client}'s network namespace)")
    if "EXPOSE 9464" not in open(os.path.join(src, "Dockerfile")).read():
        errors.append("Dockerfile does not EXPOSE 9464")
    for rel in ("prometheus/tidepool-alerts.yml",):
        name = os.path.basename(rel)
        if name not in prom or not os.path.exists(os.path.join(deploy, rel)):
            errors.append(f"prometheus.yml does not load {name}")
    if "./prometheus:/etc/prometheus" not in compose:
        errors.append("compose does not mount deploy/prometheus at /etc/prometheus")

    ds = read("grafana/provisioning/datasources/prometheus.yml")
    ds_uid = re.search(r"^\s*uid:\s*(\S+)", ds, re.M)
    ds_url = re.search(r"^\s*url:\s*http://([a-z0-9_-]+):9090", ds, re.M)
    if not ds_url or not re.search(rf"^  {ds_url.group(1)}:\n", compose, re.M):
        errors.append("Grafana datasource url does not name the compose Prometheus service")
    provider = read("grafana/provisioning/dashboards/tidepool.yml")
    path = re.search(r"^\s*path:\s*(\S+)", provider, re.M)
    if not path or f"./grafana/dashboards:{path.group(1)}" not in compose:
        errors.append("dashboard provider path is not where compose mounts grafana/dashboards")
    if "./grafana/provisioning:/etc/grafana/provisioning" not in compose:
        errors.append("compose does not mount grafana/provisioning")

    with open(os.path.join(deploy, "grafana/dashboards/tidepool.json")) as f:
        dash = json.load(f)
    ds_var = [v for v in dash["templating"]["list"] if v["type"] == "datasource"]
    if not ds_var or not ds_uid or ds_var[0]["current"]["value"] != ds_uid.group(1):
        errors.append("dashboard's datasource variable does not default to the provisioned uid")
    ids, cells = set(), {}
    for p in dash["panels"]:
        title, g = p.get("title"), p["gridPos"]
        if p["id"] in ids:
            errors.append(f"duplicate panel id {p['id']} ({title})")
        ids.add(p["id"])
        if g["x"] < 0 or g["w"] <= 0 or g["x"] + g["w"] > 24:
            errors.append(f"panel {title!r} outside the 24-column grid: {g}")
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                if (x, y) in cells:
                    errors.append(f"panels {cells[(x, y)]!r} and {title!r} overlap at {x},{y}")
                    break
                cells[(x, y)] = title
            else:
                continue
            break
        if p["type"] != "row":
            if not p.get("description"):
                errors.append(f"panel {title!r} has no description")
            for t in p.get("targets", []):
                if not t.get("refId") or not t.get("expr"):
                    errors.append(f"panel {title!r} has a target without refId/expr")
            if not p.get("targets"):
                errors.append(f"panel {title!r} has no query")

    if errors:
        print("FAIL:\n  " + "\n  ".join(errors), file=sys.stderr)
        return 1
    print(f"OK: compose sidecar on service {client!r}, Prometheus target {client}:9464, "
          f"Grafana datasource uid {ds_uid.group(1)!r}, {len(dash['panels'])} panels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
