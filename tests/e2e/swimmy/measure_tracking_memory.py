#!/usr/bin/python3
"""How much memory tidepool uses to track 100,000 in-flight Swimmy requests.

Runs the shipped deploy/swimmy/tidepool.json (ports rewritten) in front of a backtest
service that reads every request and never answers, sends N requests with unique ids, waits
until all are forwarded (and, with correlation, in flight), and reads VmRSS of the tidepool
process from /proc. The same run without the correlation block gives the baseline, so the
difference is the cost of tracking. Prints figures; never fails on them.

Usage: measure_tracking_memory.py --tidepool BIN --source SRC [--count 100000]
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

import harness as h
from harness import log, wait_until


def run(args, correlation):
    work = tempfile.mkdtemp(prefix="swimmy-mem-")
    ports = {k: h.free_port() for k in h.SHIPPED_PORTS}
    http_port = h.free_port()
    _, shipped = h.load_shipped(args.source)
    cfg = h.rewrite_config(shipped, ports, http_port, log_level="warn")
    # Room for the whole run, so a slow service cannot make the probe drop messages.
    q = h.route(cfg, "requests")["queue"]
    q["max_messages"] = max(q["max_messages"], args.count)
    if not correlation:
        for r in cfg["routes"]:
            r.pop("correlation", None)
    try:
        tp = h.Tidepool(args.tidepool, cfg, work, http_port)
        tp.wait_ready()
        svc = h.peer("service", "peer_backtest.py", "--bind",
                     f"tcp://127.0.0.1:{ports['svc']}", "--results",
                     f"tcp://localhost:{ports['res']}", "--no-answer", "--quiet", log_dir=work)
        svc.wait_event("ready", 15)
        wait_until(lambda: tp.metrics().get("tidepool_backend_up", route="requests") == 1, 15,
                   "service connected")
        rss0 = tp.rss_kib()
        t0 = time.monotonic()
        snd = h.peer("sender", "peer_sender.py", "--endpoint",
                     f"tcp://127.0.0.1:{ports['req']}", "--count", args.count, "--quiet",
                     "--seed", 3, log_dir=work)
        snd.wait_event("delivered", 300)
        wait_until(lambda: tp.metrics().get("tidepool_forwarded_messages_total",
                                            route="requests") == args.count, 120,
                   f"{args.count} requests forwarded")
        wait_until(lambda: svc.evs("progress") and
                   svc.evs("progress")[-1]["received"] >= args.count - args.count % 10000, 60,
                   "service took them all")
        elapsed = time.monotonic() - t0
        m = tp.metrics()
        in_flight = m.get("tidepool_in_flight", route="requests")
        rss1 = tp.rss_kib()
        with open(f"/proc/{tp.pid}/status") as f:
            hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
        qmax = m.get("tidepool_queue_messages", route="requests")
        tp.terminate()
        return {"rss_start_kib": rss0, "rss_kib": rss1, "hwm_kib": hwm, "in_flight": in_flight,
                "queued_at_end": qmax, "seconds": elapsed}
    finally:
        h.cleanup()
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tidepool", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--count", type=int, default=100_000)
    args = ap.parse_args()
    if not os.access(args.tidepool, os.X_OK):
        log(f"tidepool binary not found: {args.tidepool}")
        return 1
    base = run(args, correlation=False)
    log(f"without correlation: VmRSS {base['rss_start_kib']} KiB at start, "
        f"{base['rss_kib']} KiB after {args.count} requests forwarded "
        f"(VmHWM {base['hwm_kib']} KiB, {base['seconds']:.1f} s)")
    corr = run(args, correlation=True)
    log(f"with correlation:    VmRSS {corr['rss_start_kib']} KiB at start, "
        f"{corr['rss_kib']} KiB with tidepool_in_flight={corr['in_flight']} "
        f"(VmHWM {corr['hwm_kib']} KiB, {corr['seconds']:.1f} s)")
    delta = corr["rss_kib"] - base["rss_kib"]
    log(f"MEMORY tracking {args.count} in-flight requests: VmRSS {corr['rss_kib'] / 1024:.1f} "
        f"MiB; {delta / 1024:.1f} MiB more than without correlation "
        f"(~{delta * 1024 / args.count:.0f} bytes per tracked request)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
