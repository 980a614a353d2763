#!/usr/bin/python3
"""The compose quick start hangs together.

Usage: check_deploy.py SOURCE_DIR

- `docker-compose config -q` (Debian's docker-compose) accepts deploy/docker-compose.yml;
- tidepool shares the client's network namespace, and Prometheus scrapes that service's
  name on the port the image exposes;
- Grafana's provisioning matches the compose mounts and the dashboard's datasource uid;
- the dashboard is well formed: unique panel ids, every panel inside the 24-column grid
  with no overlaps, every query target has a refId and an expression;
- every panel has one unit (fieldConfig.defaults.unit, no per-series unit override) and
  its queries are one kind (all per-second rates, all per-interval increases, all quantiles,
  or all plain values), a per-second unit exactly for rates; every query selects its series
  with job=~"$job" and instance=~"$instance" (the dashboard's `job` and `instance` variables);
- every alert follows the monitoring-mixin conventions: labels.severity, a static
  annotations.summary, a templated annotations.description, and an annotations.runbook_url
  into README.md whose anchor is a "### <AlertName>" subsection of its "## Runbook" section
  (and every such subsection belongs to an alert); the rules' job is prometheus.yml's.
Run with /usr/bin/python3 (stdlib and python3-yaml).
"""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys

import yaml

SEVERITIES = ("critical", "warning", "info")


def github_anchors(markdown):
    """{anchor: heading text} as GitHub renders them: lower case, punctuation other than
    '-' and '_' dropped, spaces to '-', repeats suffixed -1, -2 (code blocks skipped)."""
    anchors, seen, fenced = {}, {}, False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        m = None if fenced else re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        text = m.group(2)
        slug = re.sub(r"[^\w\- ]", "", text.lower().replace("`", "")).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        anchors[slug if n == 0 else f"{slug}-{n}"] = text
    return anchors


def runbook_subsections(markdown):
    """The "### X" headings inside "## Runbook", in order."""
    section = re.search(r"^## Runbook\n(.*?)(?=^## |\Z)", markdown, re.M | re.S)
    return re.findall(r"^### (\S+)\s*$", section.group(1), re.M) if section else None


def alert_convention_errors(rules_doc, readme, runbook_base):
    """What breaks the conventions in a loaded rules file, against README.md's text."""
    errors = []
    anchors = github_anchors(readme)
    subsections = runbook_subsections(readme)
    if subsections is None:
        return ["README.md has no \"## Runbook\" section"]
    alerts = []
    for group in rules_doc.get("groups", []):
        for rule in group.get("rules", []):
            name = rule.get("alert")
            if not name:
                continue
            alerts.append(name)
            labels, notes = rule.get("labels") or {}, rule.get("annotations") or {}
            if labels.get("severity") not in SEVERITIES:
                errors.append(f"{name}: labels.severity is {labels.get('severity')!r}, "
                              f"not one of {SEVERITIES}")
            summary, description = notes.get("summary"), notes.get("description")
            if not summary:
                errors.append(f"{name}: no annotations.summary")
            elif "{{" in summary:
                errors.append(f"{name}: annotations.summary must be static: {summary!r}")
            if not description:
                errors.append(f"{name}: no annotations.description")
            elif "{{" not in description:
                errors.append(f"{name}: annotations.description is not templated: "
                              f"{description!r}")
            url = notes.get("runbook_url")
            if not url:
                errors.append(f"{name}: no annotations.runbook_url")
                continue
            base, _, anchor = url.partition("#")
            if base != runbook_base or not anchor:
                errors.append(f"{name}: runbook_url {url!r} is not {runbook_base}#<anchor>")
            elif anchor not in anchors:
                errors.append(f"{name}: runbook_url anchor #{anchor} is not a heading of "
                              f"README.md")
            elif anchors[anchor] != name or name not in subsections:
                errors.append(f"{name}: runbook_url #{anchor} is README's "
                              f"{anchors[anchor]!r}, not a \"### {name}\" in \"## Runbook\"")
            extra = set(notes) - {"summary", "description", "runbook_url"}
            if extra:
                errors.append(f"{name}: unexpected annotations {sorted(extra)}")
    for heading in subsections:
        if heading not in alerts:
            errors.append(f"README's Runbook has \"### {heading}\", which is no alert")
    if len(set(alerts)) != len(alerts):
        errors.append(f"alert names repeat: {alerts}")
    return errors


# Grafana units that mean "per second" (rates); percentunit also fits a ratio of rates
# (CPU seconds per second).
RATE_UNITS = {"ops", "reqps", "rps", "wps", "iops", "cps", "Bps", "bps", "binBps", "binbps",
              "KBs", "MBs", "GBs", "Kbits", "Mbits"}
# Series names a query may select; each must carry both variables.
SELECTED = re.compile(r"\b(tidepool_[a-zA-Z0-9_:]+|process_[a-zA-Z0-9_:]+|up)\b(\s*\{[^}]*\})?")


def query_kind(expr):
    """quantile, rate (per second), increase (per interval or range) or value."""
    if "histogram_quantile" in expr:
        return "quantile"
    if re.search(r"\b(rate|irate)\s*\(", expr):
        return "rate"
    if re.search(r"\bincrease\s*\(", expr):
        return "increase"
    return "value"


def selector_errors(where, expr):
    bad = []
    for name, braces in SELECTED.findall(expr):
        for var in ("job", "instance"):
            if f'{var}=~"${var}"' not in (braces or ""):
                bad.append(f"{where}: {name} is selected without {var}=~\"${var}\": {expr}")
    return bad


def panel_errors(panel):
    """Unit and query conventions of one dashboard panel."""
    title = panel.get("title")
    if panel["type"] == "row":
        return []
    errors = []
    defaults = (panel.get("fieldConfig") or {}).get("defaults") or {}
    unit = defaults.get("unit")
    if not unit:
        errors.append(f"panel {title!r} has no fieldConfig.defaults.unit")
    for override in (panel.get("fieldConfig") or {}).get("overrides") or []:
        if any(prop.get("id") == "unit" for prop in override.get("properties", [])):
            errors.append(f"panel {title!r} overrides the unit of some series: one unit per "
                          f"panel, split it")
    kinds = {}
    for t in panel.get("targets", []):
        expr = t.get("expr") or ""
        kinds.setdefault(query_kind(expr), []).append(t.get("refId"))
        errors += selector_errors(f"panel {title!r} query {t.get('refId')}", expr)
    if len(kinds) > 1:
        errors.append(f"panel {title!r} mixes query kinds {kinds} under one unit {unit!r}: split "
                      f"it")
    elif unit and kinds:
        kind = next(iter(kinds))
        if kind == "rate" and unit not in RATE_UNITS | {"percentunit"}:
            errors.append(f"panel {title!r}: per-second rates shown in unit {unit!r}, not a "
                          f"per-second unit")
        if kind != "rate" and unit in RATE_UNITS:
            errors.append(f"panel {title!r}: {kind} queries shown in per-second unit {unit!r}")
    return errors


def dashboard_convention_errors(dash):
    errors = []
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    for name in ("job", "instance"):
        if name not in variables:
            errors.append(f"dashboard has no {name!r} variable")
    for name, needs in (("instance", ["job"]), ("route", ["job", "instance"])):
        query = variables.get(name, {}).get("definition", "")
        for var in needs:
            if name in variables and f'{var}=~"${var}"' not in query:
                errors.append(f"dashboard variable {name!r} does not filter on ${var}: {query}")
    for panel in dash["panels"]:
        errors += panel_errors(panel)
    return errors


def load_generator(src):
    path = os.path.join(src, "deploy/prometheus/generate-alerts.py")
    spec = importlib.util.spec_from_file_location("generate_alerts", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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

    # Alert conventions, on the shipped file and README.
    generator = load_generator(src)
    with open(os.path.join(src, "README.md")) as f:
        readme = f.read()
    with open(os.path.join(deploy, "prometheus/tidepool-alerts.yml")) as f:
        rules_doc = yaml.safe_load(f)
    # The check itself must be able to fail: a rule breaking each convention is reported.
    bad_rule = {"groups": [{"rules": [{"alert": "TidepoolDown", "labels": {},
                                       "annotations": {"summary": "{{ $labels.x }}",
                                                       "description": "static",
                                                       "runbook_url": generator.RUNBOOK + "#nope"}},
                                      {"alert": "X", "annotations": {}}]}]}
    probe = alert_convention_errors(bad_rule, readme, generator.RUNBOOK)
    assert len(probe) >= 7, probe
    errors += alert_convention_errors(rules_doc, readme, generator.RUNBOOK)
    n_alerts = sum(1 for g in rules_doc["groups"] for r in g["rules"] if "alert" in r)
    jobs = re.findall(r"^\s*-\s*job_name:\s*(\S+)", prom, re.M)
    if jobs != [generator.JOB]:
        errors.append(f"prometheus.yml scrapes jobs {jobs}; the rules are generated for "
                      f"job {generator.JOB!r} (generate-alerts.py JOB)")

    with open(os.path.join(deploy, "grafana/dashboards/tidepool.json")) as f:
        dash = json.load(f)
    # The check itself must be able to fail: the old "In flight, replies, timeouts" panel (a
    # gauge and rates under "short", no $job) and a per-series unit are reported.
    mixed = {"type": "timeseries", "title": "mixed", "fieldConfig": {
        "defaults": {"unit": "short"},
        "overrides": [{"matcher": {}, "properties": [{"id": "unit", "value": "ops"}]}]},
        "targets": [{"refId": "A", "expr": 'tidepool_in_flight{instance=~"$instance"}'},
                    {"refId": "B", "expr": 'sum(rate(tidepool_replies_total{job=~"$job",'
                                           'instance=~"$instance"}[5m]))'}]}
    probe = panel_errors(mixed)
    assert len(probe) == 3 and "mixes query kinds" in probe[2], probe
    errors += dashboard_convention_errors(dash)
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
          f"Grafana datasource uid {ds_uid.group(1)!r}, {len(dash['panels'])} panels, "
          f"{n_alerts} alerts with severity, summary, description and a README runbook")
    return 0


if __name__ == "__main__":
    sys.exit(main())
