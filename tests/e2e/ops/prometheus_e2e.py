#!/usr/bin/python3
"""A real Prometheus scrapes a real tidepool on loopback.

Usage: prometheus_e2e.py TIDEPOOL_BINARY SOURCE_DIR [--messages N]

1. tidepool runs one pipeline route: PULL bound on a free port -> PUSH connecting to a free
   port where nothing listens yet. Prometheus (scrape_interval 1s, the shipped alert rules
   loaded) scrapes it.
2. A python3-zmq PUSH peer sends N messages; Prometheus' query API must see
   tidepool_queue_messages reach N while tidepool_backend_up is 0.
3. A PULL backend appears; Prometheus must see the queue at 0 and tidepool_flushes_total
   increased, and the backend gets all N messages in order.
4. `promtool check metrics` on the live /metrics prints nothing; every dashboard and alert
   expression evaluates without error on this Prometheus; every shipped rule is healthy.
5. Route "damaged" starts with a spool holding a segment whose header is garbage: tidepool
   cuts it off and counts it in tidepool_spool_corrupt_records_total, a counter that is
   already 1 at the first scrape. The shipped TidepoolSpoolCorruptRecords alert must fire for
   that route (with its runbook_url and description), and it alone.
6. A second route with a 10-message drop-newest queue and no backend gets 15 messages: the
   shipped TidepoolMessagesDropped alert fires for it too, and no alert fires for route ops.
Every process is stopped at the end, also on failure.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse

import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import opslib  # noqa: E402

PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"


class PromAPI:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"

    def get(self, path, **params):
        url = f"{self.base}{path}?{urllib.parse.urlencode(params)}" if params else self.base + path
        status, body = opslib.http_get(url, timeout=5)
        doc = json.loads(body)
        if status != 200 or doc.get("status") != "success":
            raise AssertionError(f"GET {path} {params} -> {status}: {body[:300]}")
        return doc["data"]

    def query(self, expr):
        return self.get("/api/v1/query", query=expr)["result"]

    def scalar(self, expr):
        """Value of a single-series instant query, None when there is no series."""
        result = self.query(expr)
        if not result:
            return None
        if len(result) != 1:
            raise AssertionError(f"{expr}: expected one series, got {result}")
        return float(result[0]["value"][1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("source_dir")
    ap.add_argument("--messages", type=int, default=50)
    args = ap.parse_args()
    args.source_dir = os.path.abspath(args.source_dir)
    n = args.messages
    t0 = time.monotonic()
    rules_path = os.path.join(args.source_dir, "deploy/prometheus/tidepool-alerts.yml")
    dashboard_path = os.path.join(args.source_dir, "deploy/grafana/dashboards/tidepool.json")

    work = opslib.tmpdir("tidepool-ops-prom-")
    ctx = zmq.Context()
    procs, socks = [], []
    ok = False
    try:
        (front_port, back_port, prom_port, lossy_front, lossy_back, damaged_front,
         damaged_back) = opslib.free_ports(7)
        # "damaged" finds a spool segment with a bad header at start (a corrupt record).
        spool_dir = os.path.join(work, "spool")
        os.makedirs(os.path.join(spool_dir, "damaged"))
        with open(os.path.join(spool_dir, "damaged", f"{1:020d}.seg"), "wb") as f:
            f.write(b"this is not a tidepool spool segment header" * 4)
        damaged = opslib.pipeline_route("damaged", damaged_front, damaged_back)
        damaged["spool"] = {"dir": spool_dir}
        # "lossy" (10 messages, drop-newest, no backend ever) makes real drops for the
        # drop alert; "ops" must stay clean.
        tp = opslib.Tidepool(args.binary, work, [
            opslib.pipeline_route("ops", front_port, back_port),
            opslib.pipeline_route("lossy", lossy_front, lossy_back, max_messages=10,
                                  overflow="drop-newest"),
            damaged])
        procs.append(tp.proc)
        tp.wait_ready()
        opslib.log(f"tidepool ready on {tp.base}; backend tcp://127.0.0.1:{back_port} absent")

        prom_yml = os.path.join(work, "prometheus.yml")
        with open(prom_yml, "w") as f:
            f.write(f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - {rules_path}
scrape_configs:
  - job_name: tidepool
    static_configs:
      - targets: ["127.0.0.1:{tp.http_port}"]
""")
        check = subprocess.run([PROMTOOL, "check", "config", prom_yml], capture_output=True,
                               text=True, timeout=60)
        if check.returncode != 0:
            raise AssertionError(f"promtool check config on the test config failed:\n"
                                 f"{check.stdout}{check.stderr}")
        prom = opslib.Proc("prometheus", [
            PROMETHEUS, f"--config.file={prom_yml}",
            f"--storage.tsdb.path={os.path.join(work, 'data')}",
            f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"], work)
        procs.append(prom)
        api = PromAPI(prom_port)
        opslib.wait_until(lambda: prom.alive() and api.scalar('up{job="tidepool"}') == 1, 60,
                          "Prometheus to scrape tidepool (up == 1)")
        opslib.log(f"Prometheus on 127.0.0.1:{prom_port} scrapes tidepool")

        q_depth = 'tidepool_queue_messages{job="tidepool",route="ops"}'
        q_up = 'tidepool_backend_up{job="tidepool",route="ops"}'
        q_flushes = 'sum(tidepool_flushes_total{job="tidepool",route="ops"})'
        q_forwarded = 'tidepool_forwarded_messages_total{job="tidepool",route="ops"}'
        if api.scalar(q_up) != 0:
            raise AssertionError(f"{q_up} should be 0 with no backend, got {api.scalar(q_up)}")
        flushes_before = api.scalar(q_flushes) or 0.0

        push = ctx.socket(zmq.PUSH)
        socks.append(push)
        push.setsockopt(zmq.SNDTIMEO, 5000)
        push.setsockopt(zmq.LINGER, 5000)
        push.connect(f"tcp://127.0.0.1:{front_port}")
        for i in range(n):
            push.send(f"ops-message-{i:05d}".encode())
        opslib.log(f"pushed {n} messages into the frontend")

        opslib.wait_until(lambda: api.scalar(q_depth) == n, 30,
                          f"Prometheus to see {q_depth} == {n}")
        if api.scalar(q_up) != 0:
            raise AssertionError("backend_up should still be 0 while nothing listens")
        opslib.log(f"Prometheus sees the queue at {n} with backend_up 0")

        pull = ctx.socket(zmq.PULL)
        socks.append(pull)
        pull.setsockopt(zmq.LINGER, 0)
        pull.bind(f"tcp://127.0.0.1:{back_port}")
        got = []
        deadline = time.monotonic() + 30
        while len(got) < n and time.monotonic() < deadline:
            if pull.poll(200):
                got.append(pull.recv().decode())
        expected = [f"ops-message-{i:05d}" for i in range(n)]
        if got != expected:
            raise AssertionError(f"backend received {len(got)} messages, expected {n} in "
                                 f"order; first differences: "
                                 f"{[(a, b) for a, b in zip(got, expected) if a != b][:3]}")
        opslib.log(f"backend received all {n} messages in order")

        opslib.wait_until(lambda: api.scalar(q_depth) == 0, 30,
                          f"Prometheus to see {q_depth} == 0")
        opslib.wait_until(lambda: (api.scalar(q_flushes) or 0) > flushes_before, 30,
                          f"Prometheus to see {q_flushes} > {flushes_before}")
        opslib.wait_until(lambda: api.scalar(q_forwarded) == n, 30,
                          f"Prometheus to see {q_forwarded} == {n}")
        # Every queued message left through a flush pass (not the direct fast path).
        q_flushed = 'sum(tidepool_flushed_messages_total{job="tidepool",route="ops"})'
        opslib.wait_until(lambda: api.scalar(q_flushed) == n, 30,
                          f"Prometheus to see {q_flushed} == {n}")
        by_trigger = {r["metric"].get("trigger"): float(r["value"][1]) for r in api.query(
            'tidepool_flushes_total{job="tidepool",route="ops"} > 0')}
        opslib.log(f"Prometheus sees the queue at 0 and flushes {flushes_before:g} -> "
                   f"{api.scalar(q_flushes):g} (by trigger: {by_trigger})")

        # promtool lints the live exposition; it must print nothing.
        lint = subprocess.run([PROMTOOL, "check", "metrics"], input=tp.metrics(),
                              capture_output=True, text=True, timeout=60)
        if lint.returncode != 0 or lint.stdout.strip() or lint.stderr.strip():
            raise AssertionError(f"promtool check metrics (exit {lint.returncode}):\n"
                                 f"{lint.stdout}{lint.stderr}")
        opslib.log("promtool check metrics: clean")

        # Every shipped expression is valid PromQL for this Prometheus, with live data.
        exprs = opslib.dashboard_exprs(dashboard_path) + opslib.rule_exprs(rules_path)
        with_data = 0
        for where, expr in exprs:
            try:
                if api.query(opslib.grafana_to_promql(expr)):
                    with_data += 1
            except AssertionError as e:
                raise AssertionError(f"{where}: query failed: {e}") from None
        opslib.log(f"all {len(exprs)} dashboard/rule expressions evaluate "
                   f"({with_data} return series now)")

        def rules_evaluated():
            groups = api.get("/api/v1/rules")["groups"]
            rules = [r for g in groups for r in g["rules"]]
            return len(rules) > 0 and all(not r["lastEvaluation"].startswith("0001")
                                          for r in rules) and rules
        rules = opslib.wait_until(rules_evaluated, 30, "every alert rule evaluated once")
        unhealthy = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
        if unhealthy:
            raise AssertionError(f"unhealthy rules on live data: {unhealthy}")
        opslib.log(f"{len(rules)} alert rules loaded and healthy")

        def firing():
            return sorted((a["labels"]["alertname"], a["labels"].get("route"),
                           a["labels"].get("reason"))
                          for a in api.get("/api/v1/alerts")["alerts"] if a["state"] == "firing")

        # The corrupt record found at start fires TidepoolSpoolCorruptRecords (no `for`),
        # although its counter never rose while Prometheus watched.
        corrupt = tp.metrics()
        if opslib.sample_value(corrupt, "tidepool_spool_corrupt_records_total",
                               route="damaged") != 1:
            raise AssertionError("tidepool_spool_corrupt_records_total{route=\"damaged\"} is "
                                 "not 1: the bad segment was not found")
        expected_alerts = [("TidepoolSpoolCorruptRecords", "damaged", None)]
        try:
            opslib.wait_until(lambda: firing() == expected_alerts, 30,
                              f"exactly {expected_alerts} firing")
        except TimeoutError:
            raise AssertionError(f"firing alerts {firing()}, expected {expected_alerts}")
        alert = [a for a in api.get("/api/v1/alerts")["alerts"]
                 if a["labels"]["alertname"] == "TidepoolSpoolCorruptRecords"][0]
        notes = alert["annotations"]
        if (alert["labels"].get("severity") != "warning"
                or not notes.get("runbook_url", "").endswith("#tidepoolspoolcorruptrecords")
                or "cut 1 torn or corrupt records off route damaged" not in notes.get(
                    "description", "")):
            raise AssertionError(f"TidepoolSpoolCorruptRecords labels/annotations: {alert}")
        opslib.log(f"the corrupt spool record found at start fires {expected_alerts[0]}: "
                   f"{notes['description']}")

        # Live drops fire TidepoolMessagesDropped (no `for`) with tidepool's real labels.
        lossy = ctx.socket(zmq.PUSH)
        socks.append(lossy)
        lossy.setsockopt(zmq.SNDTIMEO, 5000)
        lossy.connect(f"tcp://127.0.0.1:{lossy_front}")
        for i in range(15):
            lossy.send(f"lossy-{i}".encode())

        expected_alerts = sorted(expected_alerts +
                                 [("TidepoolMessagesDropped", "lossy", "queue_full")])
        # Exactly this alert, polled with a deadline (rules are evaluated every second).
        try:
            opslib.wait_until(lambda: firing() == expected_alerts, 30,
                              f"exactly {expected_alerts} firing")
        except TimeoutError:
            raise AssertionError(f"firing alerts {firing()}, expected {expected_alerts}")
        opslib.log(f"live drops fire TidepoolMessagesDropped too: {expected_alerts}; nothing "
                   f"fires for route ops")
        ok = True
    except (AssertionError, TimeoutError) as e:
        print(f"FAIL: {e}", file=sys.stderr)
    finally:
        for s in socks:
            s.close(linger=0)
        ctx.term()
        codes = {}
        for p in reversed(procs):
            codes[p.name] = p.stop()
            if not ok:
                p.dump()
        if ok and codes.get("tidepool") != 0:
            print(f"FAIL: tidepool exited {codes.get('tidepool')} after SIGTERM",
                  file=sys.stderr)
            procs[0].dump()
            ok = False
        shutil.rmtree(work, ignore_errors=True)
    opslib.log(f"{'PASS' if ok else 'FAIL'} in {time.monotonic() - t0:.1f}s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
