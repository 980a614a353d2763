#!/usr/bin/python3
"""Every tidepool_* and process_* series the Grafana dashboard and the alert rules query is
one a LIVE tidepool exports, and every drop reason it exports is either paged on by an alert
or listed as routine.

Usage: check_metric_names.py TIDEPOOL_BINARY SOURCE_DIR [--extra-expr PROMQL ...]

Starts the real binary on free loopback ports with routes of every kind (pipeline with
correlation, its results route, request-reply), reads its /metrics, and checks the names.
--extra-expr adds expressions to check (e.g. a misspelled one, to see the test fail).
"""

import argparse
import os
import re
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import opslib  # noqa: E402

# What the issue asks the dashboard to show; each must be queried by at least one panel.
DASHBOARD_MUST_USE = [
    "tidepool_queue_messages", "tidepool_queue_capacity_messages",
    "tidepool_queue_oldest_age_seconds", "tidepool_flushes_total",
    "tidepool_received_messages_total", "tidepool_forwarded_messages_total",
    "tidepool_dropped_messages_total", "tidepool_backend_up", "tidepool_backend_peers",
    "tidepool_queue_wait_seconds_bucket", "tidepool_request_duration_seconds_bucket",
    "tidepool_in_flight", "tidepool_replies_total", "tidepool_spool_bytes",
    "tidepool_spool_replayed_messages_total", "tidepool_spool_corrupt_records_total",
    "process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
]

# What a live tidepool must export whatever the dashboard uses (issue 15): the process
# collector's names, as every Prometheus client library exports them, and the reload status.
MUST_EXPORT = [
    "process_cpu_seconds_total", "process_resident_memory_bytes",
    "process_virtual_memory_bytes", "process_open_fds", "process_max_fds",
    "process_start_time_seconds", "tidepool_config_last_reload_successful",
    "tidepool_config_last_reload_success_timestamp_seconds",
    "tidepool_http_admin_refused_total",
]


# Drop reasons that do not page (README, Alerts): a client that left before its reply, and
# what a short drain left at stop. Every other reason must be selected by an alert.
ROUTINE_DROP_REASONS = {"unroutable", "shutdown"}


def alerted_drop_reasons(rule_exprs):
    """Reasons the rules select on tidepool_dropped_messages_total (reason="a" / =~"a|b")."""
    reasons = set()
    for _, expr in rule_exprs:
        for braces in re.findall(r"tidepool_dropped_messages_total\s*\{([^}]*)\}", expr):
            for op, value in re.findall(r'reason\s*(=~|=)\s*"([^"]*)"', braces):
                reasons.update(value.split("|") if op == "=~" else [value])
    return reasons


def drop_reason_errors(exported_reasons, alerted):
    errors = []
    for reason in sorted(exported_reasons - alerted - ROUTINE_DROP_REASONS):
        errors.append(f"drop reason {reason!r} is exported but no alert selects it and it is "
                      f"not routine ({sorted(ROUTINE_DROP_REASONS)})")
    for reason in sorted(alerted & ROUTINE_DROP_REASONS):
        errors.append(f"drop reason {reason!r} is routine but an alert pages on it")
    for reason in sorted(alerted - exported_reasons):
        errors.append(f"an alert selects drop reason {reason!r}, which tidepool does not export")
    return errors


def unknown_names(exprs, exported):
    """[(where, expr, sorted unknown names)] for expressions naming series tidepool lacks."""
    bad = []
    for where, expr in exprs:
        missing = sorted(opslib.series_names_in(expr) - exported)
        if missing:
            bad.append((where, expr, missing))
    return bad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("source_dir")
    ap.add_argument("--extra-expr", action="append", default=[])
    args = ap.parse_args()
    args.source_dir = os.path.abspath(args.source_dir)

    dashboard = os.path.join(args.source_dir, "deploy/grafana/dashboards/tidepool.json")
    rules = os.path.join(args.source_dir, "deploy/prometheus/tidepool-alerts.yml")
    exprs = opslib.dashboard_exprs(dashboard) + opslib.rule_exprs(rules)
    exprs += [("--extra-expr", e) for e in args.extra_expr]
    n_rules = sum(1 for line in open(rules) if line.strip().startswith("- alert:"))
    n_rule_exprs = sum(1 for where, _ in exprs if where.startswith("rule "))
    if n_rule_exprs != n_rules:
        sys.exit(f"FAIL: found {n_rule_exprs} rule expressions for {n_rules} alerts in {rules}")
    opslib.log(f"{len(exprs)} expressions ({n_rules} alert rules) from the dashboard and rules")

    work = opslib.tmpdir("tidepool-ops-names-")
    p = opslib.free_ports(6)
    routes = [
        opslib.pipeline_route("requests", p[0], p[1]),
        opslib.pipeline_route("results", p[2], p[3]),
        {"name": "rpc",
         "frontend": {"type": "router", "bind": [f"tcp://127.0.0.1:{p[4]}"], "connect": []},
         "backend": {"type": "dealer", "bind": [], "connect": [f"tcp://127.0.0.1:{p[5]}"]}},
    ]
    routes[0]["correlation"] = {"key": "request_id", "pair_with": "results", "timeout_ms": 60000}
    tp = opslib.Tidepool(args.binary, work, routes)
    ok = False
    try:
        tp.wait_ready()
        text = tp.metrics()
        exported = opslib.exported_names(text)
        ours = sorted(n for n in exported if n.startswith(("tidepool_", "process_")))
        opslib.log(f"live tidepool exports {len(ours)} tidepool_*/process_* series names")

        # The check itself must be able to fail: a misspelled name has to be reported.
        probe = unknown_names([("probe", "sum(rate(tidepool_queue_mesages[1m]))")], exported)
        assert probe and probe[0][2] == ["tidepool_queue_mesages"], "checker misses misspellings"

        # Every exported drop reason pages or is routine; a new reason must be classified.
        _, samples = opslib.parse_metrics(text)
        reasons = {ls["reason"] for n, ls, _ in samples
                   if n == "tidepool_dropped_messages_total" and "reason" in ls}
        alerted = alerted_drop_reasons(opslib.rule_exprs(rules))
        probe = drop_reason_errors({"queue_full", "new_reason"}, {"queue_full", "shutdown"})
        assert len(probe) == 3 and "new_reason" in probe[0], probe
        failures = drop_reason_errors(reasons, alerted)
        opslib.log(f"drop reasons: {len(alerted)} page ({', '.join(sorted(alerted))}), routine: "
                   f"{', '.join(sorted(ROUTINE_DROP_REASONS))}")
        for where, expr, missing in unknown_names(exprs, exported):
            failures.append(f"{where}: {', '.join(missing)} not exported by tidepool\n"
                            f"    expr: {' '.join(expr.split())}")
        used = set().union(*(opslib.series_names_in(e) for w, e in exprs
                             if w.startswith("dashboard")))
        for name in MUST_EXPORT:
            if name not in exported:
                failures.append(f"live tidepool does not export {name}")
        if not any(line.startswith("tidepool_build_info{") and 'libzmq="' in line
                   for line in text.splitlines()):
            failures.append("tidepool_build_info has no libzmq label")
        for name in DASHBOARD_MUST_USE:
            if name not in used:
                failures.append(f"dashboard: no panel queries {name}")
        unused = sorted(set(ours) - used - {"tidepool_build_info"}
                        - {n for n in ours if n.endswith(("_sum", "_count"))})
        if unused:
            opslib.log(f"note: exported but not on the dashboard: {', '.join(unused)}")
        if failures:
            print("FAIL:\n  " + "\n  ".join(failures), file=sys.stderr)
            print("exported tidepool_*/process_* names:\n  " + "\n  ".join(ours),
                  file=sys.stderr)
            return 1
        opslib.log(f"OK: all {len(used)} dashboard names and every rule name are exported")
        ok = True
        return 0
    finally:
        code = tp.stop()
        if not ok:
            tp.proc.dump()
        elif code != 0:
            print(f"FAIL: tidepool exited {code} after SIGTERM", file=sys.stderr)
            tp.proc.dump()
            sys.exit(1)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
