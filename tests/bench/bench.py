#!/usr/bin/python3
"""Orchestrates the tidepool benchmark (run.sh is the entry point; see README.md, "Performance").

Every workload runs three ways in one run: direct (client talks to worker), through
bench_zmq_proxy (libzmq's zmq_proxy with default HWMs) and through tidepool. The message hot
loops are C++ (bench_client); this script only starts processes on free loopback ports, reads
/proc and /metrics, and prints the table. It never fails because a machine is slow: it prints
what it measured, and "n/a" with a note for what it could not.

The scale workload (--only scale) shows how cost grows with the work: backlog size, routes in
one process, request-reply clients, workers behind a route; zmq_proxy and tidepool
interleaved, a table per series group, and with --plot DIR a chart per series (plot.py).
"""

import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")
KIB = 1024
MIB = 1024 * 1024
MODES = ("direct", "zmq_proxy", "tidepool")

NOTES = []          # printed under the table
PROCS = []          # every process we started, stopped at exit (by its own handle)


def note(msg):
    NOTES.append(msg)
    log(f"note: {msg}")


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# processes, ports, /proc

# Ports as the tests take them (tests/support/test_ports.py): from below the kernel's ephemeral
# range, each locked for this run, so no test beside the benchmark (`ctest -L bench-smoke` runs
# it among them) and no outgoing connection is given one, nor is one handed out twice.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from test_ports import free_port  # noqa: E402


def ep(port):
    return f"tcp://127.0.0.1:{port}"


def start(argv, stdout=subprocess.PIPE, stderr=None, name=None, stdin=None):
    p = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=stderr, text=True)
    p.bench_name = name or os.path.basename(argv[0])
    PROCS.append(p)
    return p


def stop(p, timeout=3.0):
    if p is None or p.poll() is not None:
        return
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def stop_all():
    for p in PROCS:
        stop(p, 1.0)


def wait_json(p, timeout):
    """Waits for a bench_client and returns the JSON line it printed (None on failure)."""
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        note(f"{p.bench_name} timed out after {timeout:.0f} s")
    for line in reversed((out or "").splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                pass
    return None


def tcp_sockets():
    """(local_port, remote_port, state) of every IPv4 TCP socket, from /proc/net/tcp."""
    rows = []
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                parts = line.split()
                rows.append((int(parts[1].split(":")[1], 16), int(parts[2].split(":")[1], 16),
                             parts[3]))
    except OSError:
        pass
    return rows


def wait_until(pred, timeout, interval=0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return pred()


def wait_listening(port, timeout=5.0):
    return wait_until(lambda: any(l == port and st == "0A" for l, _, st in tcp_sockets()), timeout)


def wait_connected_to(port, timeout=5.0):
    """True once some socket has an established TCP connection to `port` (the proxy's backend
    has reached the worker). The ZMTP handshake follows within a round trip."""
    ok = wait_until(lambda: any(r == port and st == "01" for _, r, st in tcp_sockets()), timeout)
    time.sleep(0.05)
    return ok


def cpu_seconds(pid):
    """CPU time of a whole process: on-CPU nanoseconds summed over its threads (schedstat,
    precise), else utime + stime in clock ticks (10 ms granularity)."""
    try:
        total = 0
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        return total / 1e9
    except (OSError, IndexError, ValueError):
        pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def rss_bytes(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


# --------------------------------------------------------------------------------------------
# proxies

class Proxy:
    """A proxy process between client and worker: zmq_proxy or tidepool. `direct` is None."""

    def __init__(self, kind, pattern, front_port, back_port, bins, tmpdir, queue=None,
                 back_bind=False, routes=1):
        """routes > 1 (tidepool only): that many routes in one process, on consecutive pairs
        from front_port and back_port, which are then lists of ports."""
        self.kind, self.pattern = kind, pattern
        self.front_port, self.back_port = front_port, back_port
        self.http_port = None
        self.proc = None
        tag = front_port if routes == 1 else f"{front_port[0]}x{routes}"
        self.log_path = os.path.join(tmpdir, f"{kind}-{pattern}-{tag}.log")
        self.log = open(self.log_path, "w")
        if kind == "zmq_proxy":
            argv = [bins["bench_zmq_proxy"],
                    "router-dealer" if pattern == "reqrep" else "pull-push",
                    f"tcp://127.0.0.1:{front_port}", ep(back_port),
                    "bind" if back_bind else "connect"]
        else:
            self.http_port = free_port()
            if routes == 1:
                cfg = tidepool_config(pattern, front_port, back_port, self.http_port, queue,
                                      back_bind)
            else:
                cfg = tidepool_config(pattern, front_port[0], back_port[0], self.http_port,
                                      queue, back_bind)
                first = cfg["routes"][0]
                cfg["routes"] = []
                for i, (fp, bp) in enumerate(zip(front_port, back_port)):
                    r = json.loads(json.dumps(first))
                    r["name"] = f"bench{i}"
                    r["frontend"]["bind"] = [f"tcp://127.0.0.1:{fp}"]
                    r["backend"]["bind" if back_bind else "connect"] = [ep(bp)]
                    cfg["routes"].append(r)
            cfg_path = os.path.join(tmpdir, f"tidepool-{pattern}-{tag}.json")
            with open(cfg_path, "w") as f:
                json.dump(cfg, f, indent=1)
            argv = [bins["tidepool"], "--config", cfg_path]
        self.proc = start(argv, stdout=self.log, stderr=self.log, name=kind)
        if kind == "tidepool":
            if not wait_until(lambda: self.http_ok("/readyz") or self.proc.poll() is not None,
                              15.0, 0.02) or self.proc.poll() is not None:
                raise RuntimeError(f"tidepool did not become ready: {self.tail()}")

    def tail(self):
        self.log.flush()
        try:
            with open(self.log_path) as f:
                return " | ".join(f.read().strip().splitlines()[-3:])
        except OSError:
            return ""

    def http_ok(self, path):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}",
                                        timeout=1) as r:
                return r.status == 200
        except Exception:  # noqa: BLE001 - not up yet
            return False

    def metric(self, name, route="bench"):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/metrics",
                                        timeout=2) as r:
                text = r.read().decode()
        except Exception:  # noqa: BLE001
            return None
        pat = re.compile(r"^" + re.escape(name) + r"\{([^}]*)\}\s+(\S+)", re.M)
        for labels, value in pat.findall(text):
            if f'route="{route}"' in labels:
                return float(value)
        return None

    def metrics_text(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/metrics",
                                        timeout=2) as r:
                return r.read().decode()
        except Exception:  # noqa: BLE001
            return ""

    def metric_sum(self, name):
        """The sum of a per-route metric over all routes (None when unreadable)."""
        vals = re.findall(r"^" + re.escape(name) + r"\{[^}]*\}\s+(\S+)", self.metrics_text(), re.M)
        return sum(float(v) for v in vals) if vals else None

    def wait_backend(self):
        ok = wait_connected_to(self.back_port)
        if self.kind == "tidepool":
            ok = wait_until(lambda: self.metric("tidepool_backend_up") in (1.0, None), 5.0,
                            0.02) or ok
        return ok

    def cpu(self):
        return cpu_seconds(self.proc.pid)

    def rss(self):
        return rss_bytes(self.proc.pid)

    def alive(self):
        return self.proc.poll() is None

    def close(self):
        stop(self.proc, 5.0)
        self.log.close()


ROUTE_OVERRIDES = {}  # --tidepool-route JSON, merged into every generated route


def deep_merge(base, extra):
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            deep_merge(base[k], v)
        else:
            base[k] = v
    return base


def tidepool_config(pattern, front_port, back_port, http_port, queue=None, back_bind=False):
    reqrep = pattern == "reqrep"
    q = {"max_messages": 5000, "max_bytes": 268435456, "max_message_bytes": 67108864,
         "overflow": "block", "ttl_ms": 0}
    q.update(queue or {})
    cfg = {
        "http": {"listen": f"127.0.0.1:{http_port}"},
        "log": {"level": "warn", "format": "text"},
        "shutdown": {"drain_timeout_ms": 1000},
        "routes": [{
            "name": "bench",
            "frontend": {"type": "router" if reqrep else "pull",
                         "bind": [f"tcp://127.0.0.1:{front_port}"], "connect": []},
            "backend": {"type": "dealer" if reqrep else "push",
                        "bind": [ep(back_port)] if back_bind else [],
                        "connect": [] if back_bind else [ep(back_port)]},
            "queue": q,
            "flush": {"interval_ms": 1000, "drain_rate": 0, "max_in_flight": 0},
        }],
    }
    deep_merge(cfg["routes"][0], json.loads(json.dumps(ROUTE_OVERRIDES)))
    return cfg


PERF_DIR = ""       # --perf: record a profile of every proxy process into this directory


class Topology:
    """Worker port, proxy (or none) and the endpoint clients use, for one mode."""

    def __init__(self, mode, pattern, bins, tmpdir, queue=None, label="", back_bind=False):
        self.back_port = free_port()
        self.proxy = None
        self.perf = None
        if mode == "direct":
            self.client_ep = ep(self.back_port)
        else:
            front = free_port()
            self.client_ep = ep(front)
            self.proxy = Proxy(mode, pattern, front, self.back_port, bins, tmpdir, queue,
                               back_bind)
            if PERF_DIR and label:
                out = os.path.join(PERF_DIR, f"{mode}-{label}.perf.data")
                self.perf = start(["perf", "record", "-q", "-g", "-o", out, "-p",
                                   str(self.proxy.proc.pid)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, name="perf")
                time.sleep(0.3)  # perf needs a moment to attach

    def close(self):
        if self.perf:
            self.perf.send_signal(signal.SIGINT)  # perf writes its file on SIGINT
            try:
                self.perf.wait(30)
            except subprocess.TimeoutExpired:
                stop(self.perf)
        if self.proxy:
            self.proxy.close()


# --------------------------------------------------------------------------------------------
# workloads

def stats(values):
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals),
            "values": vals}


def pipeline_once(mode, size, count, bins, topo, timeout):
    recv = start([bins["bench_client"], "pull", "--bind", ep(topo.back_port), "--count",
                  str(count), "--idle-timeout-ms", "10000"], name=f"pull[{mode}]")
    if not wait_listening(topo.back_port):
        stop(recv)
        raise RuntimeError("receiver did not listen")
    if topo.proxy:
        topo.proxy.wait_backend()
        cpu0 = topo.proxy.cpu()
    # How many of them took a trip through tidepool's queue rather than straight on.
    queue_trips = topo.proxy and topo.proxy.kind == "tidepool"
    def forwarded():
        return topo.proxy.metric_sum("tidepool_forwarded_messages_total") or 0
    forwarded0 = forwarded() if queue_trips else 0
    flushed0 = topo.proxy.metric_sum("tidepool_flushed_messages_total") if queue_trips else None
    send = start([bins["bench_client"], "push", "--connect", topo.client_ep, "--count",
                  str(count), "--size", str(size)], name=f"push[{mode}]")
    res = wait_json(recv, timeout)
    cpu1 = topo.proxy.cpu() if topo.proxy else None
    flushed1 = None
    if queue_trips and res is not None:
        # Metrics are published every 5 ms: read them once they show the whole run.
        if wait_until(lambda: forwarded() >= forwarded0 + count, 5.0):
            flushed1 = topo.proxy.metric_sum("tidepool_flushed_messages_total")
    stop(send, 5.0)
    if res is None:
        raise RuntimeError("receiver printed nothing")
    if res["received"] != count:
        note(f"pipeline {mode} {size} B: received {res['received']} of {count}")
        return None
    out = {"msgs_per_s": res["msgs_per_s"], "mb_per_s": res["mb_per_s"]}
    if topo.proxy and cpu0 is not None and cpu1 is not None:
        out["cpu_s_per_M"] = (cpu1 - cpu0) / count * 1e6
    if flushed0 is not None and flushed1 is not None:
        out["queued_pct"] = (flushed1 - flushed0) / count * 100
    return out


def calibrate(size, bins, tmpdir, target_s, cfg):
    """Message count that takes about target_s through zmq_proxy (the baseline)."""
    if cfg.smoke:
        return 2000 if size < 64 * KIB else 50
    pilot = max(200, min(300000, int(16 * MIB / size)))
    topo = Topology("zmq_proxy", "pipeline", bins, tmpdir)
    try:
        r = pipeline_once("zmq_proxy", size, pilot, bins, topo, 60)
    finally:
        topo.close()
    rate = r["msgs_per_s"] if r else 0
    if rate <= 0:
        return pilot
    return int(max(200, min(20_000_000, rate * target_s * cfg.count_scale)))


def interleaved(label, modes, reps, setup, run_once, teardown):
    """Runs each repetition on every mode in turn (direct, zmq_proxy, tidepool, direct, ...),
    so that a load change on a shared machine hits all modes alike. Returns {mode: [results]}.
    A mode whose set-up or run fails is reported and dropped; the others continue."""
    ctx, runs = {}, {m: [] for m in modes}
    try:
        for mode in modes:
            try:
                ctx[mode] = setup(mode)
            except Exception as e:  # noqa: BLE001 - a benchmark reports, it does not fail
                note(f"{label} {mode}: {e}")
        for rep in range(reps):
            order = list(ctx)
            order = order[rep % len(order):] + order[:rep % len(order)] if order else order
            for mode in order:  # rotated each repetition: no mode always runs first
                try:
                    r = run_once(mode, ctx[mode])
                    if r is not None:
                        runs[mode].append(r)
                    topo = ctx[mode][0] if isinstance(ctx[mode], tuple) else ctx[mode]
                    if topo.proxy and not topo.proxy.alive():
                        raise RuntimeError(f"{mode} exited: {topo.proxy.tail()}")
                except Exception as e:  # noqa: BLE001
                    note(f"{label} {mode}: {e}")
                    teardown(ctx.pop(mode))
    finally:
        for c in ctx.values():
            teardown(c)
    return runs


def bench_pipeline(bins, modes, tmpdir, cfg, results):
    for size in cfg.sizes:
        count = calibrate(size, bins, tmpdir, cfg.target_seconds, cfg)
        label = f"pipeline {fmt_size(size)}"
        log(f"{label}: {count} messages per run")
        runs = interleaved(
            label, modes, cfg.reps,
            lambda mode: Topology(mode, "pipeline", bins, tmpdir, label=f"pipeline-{size}B"),
            lambda mode, topo: pipeline_once(mode, size, count, bins, topo,
                                             timeout=60 + 30 * cfg.target_seconds),
            lambda topo: topo.close())
        key = f"pipeline/{fmt_size(size)}"
        for mode in modes:
            for metric in ("msgs_per_s", "mb_per_s", "cpu_s_per_M", "queued_pct"):
                if metric == "cpu_s_per_M" and mode == "direct":
                    continue  # no proxy process to measure
                if metric == "queued_pct" and mode != "tidepool":
                    continue  # only tidepool has a queue
                results.setdefault(f"{key}/{metric}", {})[mode] = stats(
                    [r.get(metric) for r in runs[mode]])
        results[f"{key}/count"] = count


def reqrep_setup(mode, worker_type, bins, tmpdir, label):
    """Proxy (unless direct) and an echo worker bound where the proxy's backend connects."""
    topo = Topology(mode, "reqrep", bins, tmpdir, label=label)
    worker = start([bins["bench_client"], "worker", "--type", worker_type, "--bind",
                    ep(topo.back_port)], name=f"{worker_type}[{mode}]")
    if not wait_listening(topo.back_port):
        reqrep_teardown((topo, worker))
        raise RuntimeError("worker did not listen")
    if topo.proxy:
        topo.proxy.wait_backend()
    return topo, worker


def reqrep_teardown(ctx):
    topo, worker = ctx
    stop(worker)
    topo.close()


def bench_pingpong(bins, modes, tmpdir, cfg, results):
    for size in (64, KIB):
        label = f"ping-pong {fmt_size(size)}"

        def once(mode, ctx, size=size, label=label):
            client = start([bins["bench_client"], "req", "--connect", ctx[0].client_ep,
                            "--count", str(cfg.pingpong_count), "--warmup",
                            str(max(10, cfg.pingpong_count // 10)), "--size", str(size)],
                           name=f"req[{mode}]")
            r = wait_json(client, 120)
            if r is None or r["failed"]:
                note(f"{label} {mode}: a reply did not come back")
                return None
            return r

        runs = interleaved(
            label, modes, cfg.reps,
            lambda mode, size=size: reqrep_setup(mode, "rep", bins, tmpdir,
                                                 f"pingpong-{size}B"),
            once, reqrep_teardown)
        for mode in modes:
            for metric in ("p50_us", "p99_us", "p999_us"):
                results.setdefault(f"rtt/{fmt_size(size)}/{metric}", {})[mode] = stats(
                    [r[metric] for r in runs[mode]])


def bench_outstanding(bins, modes, tmpdir, cfg, results):
    def once(mode, ctx):
        proxy = ctx[0].proxy
        cpu0 = proxy.cpu() if proxy else None
        client = start([bins["bench_client"], "dealer", "--connect", ctx[0].client_ep,
                        "--count", str(cfg.dealer_count), "--outstanding", str(cfg.outstanding),
                        "--size", "64", "--timeout-ms", "2000"], name=f"dealer[{mode}]")
        r = wait_json(client, 60 + cfg.dealer_count / 1000)
        cpu1 = proxy.cpu() if proxy else None
        if r and cpu0 is not None and cpu1 is not None and r["received"]:
            # Per request answered: request in, request out, reply in, reply out.
            r["cpu_s_per_M"] = (cpu1 - cpu0) / r["received"] * 1e6
        return r

    # A DEALER worker echoes the envelope and blocks at its HWM instead of dropping (a REP
    # worker itself drops replies at 1000 outstanding, even with no proxy in between).
    runs = interleaved("outstanding", modes, cfg.reps,
                       lambda mode: reqrep_setup(mode, "dealer", bins, tmpdir, "outstanding"),
                       once, reqrep_teardown)
    for mode in modes:
        rs = runs[mode]
        results.setdefault("outstanding/req_per_s", {})[mode] = stats([r["req_per_s"] for r in rs])
        results.setdefault("outstanding/lost", {})[mode] = stats([r["lost"] for r in rs])
        if mode != "direct":
            results.setdefault("outstanding/cpu_s_per_M", {})[mode] = stats(
                [r.get("cpu_s_per_M") for r in rs])
        if any(r["late"] or r["bogus"] for r in rs):
            note(f"outstanding {mode}: late/duplicate replies "
                 f"{sum(r['late'] for r in rs)}/{sum(r['bogus'] for r in rs)}")


def backlog_once(bins, tmpdir, count, size, label):
    """One backlog run: `count` × `size` B queued with no worker, then a worker binds.
    Returns {drain_s, transfer_s, bytes_per_msg} (bytes_per_msg None when RSS is unreadable)."""
    topo = None
    try:
        topo = Topology("tidepool", "pipeline", bins, tmpdir,
                        queue={"max_messages": max(5000, 2 * count),
                               "max_bytes": max(268435456, 4 * count * size)},
                        label=label)
        px = topo.proxy
        time.sleep(0.3)  # let start-up allocations settle before the idle reading
        rss_idle = px.rss()
        send = start([bins["bench_client"], "push", "--connect", topo.client_ep, "--count",
                      str(count), "--size", str(size)], name="push[backlog]")
        fill_timeout = 60.0 + count * size / 20e6  # a slow machine takes longer, never fails
        if not wait_until(lambda: (px.metric("tidepool_queue_messages") or 0) >= count,
                          fill_timeout, 0.05):
            raise RuntimeError(f"queue never reached {count} "
                               f"(is {px.metric('tidepool_queue_messages')})")
        wait_json(send, 30)
        time.sleep(0.2)
        rss_queued = px.rss()
        recv = start([bins["bench_client"], "pull", "--bind", ep(topo.back_port), "--count",
                      str(count), "--idle-timeout-ms", "10000"], name="pull[backlog]")
        r = wait_json(recv, 120 + count * size / 20e6)
        if r is None or r["received"] != count:
            raise RuntimeError(f"receiver got {r and r['received']} of {count}")
        # From the moment the worker's socket is bound (the backend "appears") to the last
        # message: includes tidepool's reconnect delay, which is part of the user's wait.
        return {"drain_s": r["t_last"] - r["t_ready"], "transfer_s": r["t_last"] - r["t_first"],
                "bytes_per_msg": (rss_queued - rss_idle) / count - size
                if rss_idle and rss_queued else None}
    finally:
        if topo:
            topo.close()


def bench_backlog(bins, tmpdir, cfg, results):
    count = cfg.backlog_count
    runs = []
    for rep in range(cfg.reps):
        try:
            runs.append(backlog_once(bins, tmpdir, count, 64, f"backlog-{rep}"))
        except Exception as e:  # noqa: BLE001
            note(f"backlog: {e}")
    for metric in ("drain_s", "transfer_s", "bytes_per_msg"):
        results[f"backlog/{metric}"] = {"tidepool": stats([r[metric] for r in runs])}
    results["backlog/count"] = count


# --------------------------------------------------------------------------------------------
# scale: how cost grows with the work. Each group is a table (and, with --plot, a chart per
# metric): x is the amount of work, one line per mode (or per message size for backlog).

SCALE_MODES = ("zmq_proxy", "tidepool")


class Fresh:
    """interleaved() context for runs that start their own proxies each time (no long-lived
    proxy to check on)."""
    proxy = None


class Series:
    """One metric over the x values of a group: lines[name][x] = stats."""

    def __init__(self, key, title, unit, xlabel, xlog, ylog=False, ratio=True, short=None):
        self.key, self.title, self.unit, self.xlabel = key, title, unit, xlabel
        self.short = short or title  # its column heading in the table
        self.xlog, self.ylog, self.ratio = xlog, ylog, ratio
        self.lines = {}

    def put(self, line, x, values):
        self.lines.setdefault(line, {})[x] = stats(values)

    def to_json(self):
        return {"title": self.title, "unit": self.unit, "xlabel": self.xlabel,
                "lines": {k: {str(x): v for x, v in pts.items()} for k, pts in self.lines.items()}}


SCALE = []  # (group title, how, [Series]) in print order


def established_to(ports):
    """How many of `ports` have at least one established TCP connection to them, and the number
    of connections to each."""
    per = {}
    for _, remote, st in tcp_sockets():
        if st == "01" and remote in ports:
            per[remote] = per.get(remote, 0) + 1
    return per


def idle_cpu_percent(procs, seconds):
    """% of one core the processes used together over `seconds` (None if one is unreadable)."""
    c0 = [cpu_seconds(p.pid) for p in procs]
    t0 = time.monotonic()
    time.sleep(seconds)
    c1 = [cpu_seconds(p.pid) for p in procs]
    dt = time.monotonic() - t0
    if None in c0 or None in c1:
        return None
    return (sum(c1) - sum(c0)) / dt * 100


def scale_backlog(bins, tmpdir, cfg):
    """tidepool only (zmq_proxy keeps nothing while its backend is absent). The points run
    interleaved within a repetition, so a load change hits all counts alike."""
    mem = Series("scale/backlog/bytes_per_msg", "backlog memory beyond payload",
                 "B per queued msg", "queued messages", xlog=True, ratio=False,
                 short="B/msg beyond payload")
    drain = Series("scale/backlog/drain_s", "backlog drain (worker bind → last msg)", "s",
                   "queued messages", xlog=True, ylog=True, ratio=False, short="drain s")
    points = [(c, z) for z in cfg.scale_sizes for c in cfg.scale_backlog]
    try:
        with open("/proc/meminfo") as f:
            avail = int(re.search(r"MemAvailable:\s+(\d+)", f.read()).group(1)) * 1024
    except (OSError, AttributeError):
        avail = None
    runnable = []
    for c, z in points:
        need = c * (z + 400) * 2  # payload plus overhead, twice over for headroom
        if avail is not None and need > avail / 2:
            note(f"scale backlog {fmt_num(c)} × {fmt_size(z)}: skipped, needs about "
                 f"{need / MIB:.0f} MiB of the {avail / MIB:.0f} MiB available")
        else:
            runnable.append((c, z))
    runs = {p: [] for p in runnable}
    for rep in range(cfg.scale_reps):
        order = runnable[rep % len(runnable):] + runnable[:rep % len(runnable)] if runnable else []
        for c, z in order:
            log(f"scale backlog {fmt_num(c)} × {fmt_size(z)} (rep {rep + 1})")
            try:
                runs[(c, z)].append(backlog_once(bins, tmpdir, c, z, f"scale-backlog-{c}-{z}"))
            except Exception as e:  # noqa: BLE001
                note(f"scale backlog {fmt_num(c)} × {fmt_size(z)}: {e}")
    for (c, z), rs in runs.items():
        mem.put(fmt_size(z), c, [r["bytes_per_msg"] for r in rs])
        drain.put(fmt_size(z), c, [r["drain_s"] for r in rs])
    SCALE.append(("backlog (tidepool only): memory per queued message and drain time",
                  "no worker; `count` messages sent and queued; RSS growth / count − payload; "
                  "then a PULL worker binds", [mem, drain]))


def routes_once(mode, n, count, bins, tmpdir, cfg):
    """n routes: idle CPU with backends absent, then present, then all loaded at once by one
    PUSH spreading over the n frontends into one PULL bound on the n backend ports."""
    fronts = [free_port() for _ in range(n)]
    backs = [free_port() for _ in range(n)]
    proxies, recv, send = [], None, None
    try:
        if mode == "tidepool":
            proxies.append(Proxy("tidepool", "pipeline", fronts if n > 1 else fronts[0],
                                 backs if n > 1 else backs[0], bins, tmpdir, routes=n))
        else:  # libzmq's proxy is one pair of sockets: n routes are n processes
            for fp, bp in zip(fronts, backs):
                proxies.append(Proxy("zmq_proxy", "pipeline", fp, bp, bins, tmpdir))
            if not wait_until(lambda: set(fronts) <= {lp for lp, _, st in tcp_sockets()
                                                      if st == "0A"}, 15.0, 0.05):
                raise RuntimeError("zmq_proxy frontends did not listen")
        procs = [px.proc for px in proxies]
        time.sleep(cfg.idle_settle)
        absent = idle_cpu_percent(procs, cfg.idle_seconds)
        recv = start([bins["bench_client"], "pull", "--bind", ",".join(ep(b) for b in backs),
                      "--count", str(count), "--idle-timeout-ms", "10000",
                      "--start-timeout-ms", "120000"], name=f"pull[routes {mode}]")
        # tidepool's reconnect back-off may be at up to 5 s; zmq_proxy retries every 100 ms.
        def all_connected():
            return len(established_to(set(backs))) == n or recv.poll() is not None

        if not wait_until(all_connected, 20.0, 0.05) or recv.poll() is not None:
            state = "exited" if recv.poll() is not None else "up"
            raise RuntimeError(f"only {len(established_to(set(backs)))} of {n} backends "
                               f"connected (receiver {state})")
        if mode == "tidepool":
            wait_until(lambda: (proxies[0].metric_sum("tidepool_backend_up") or 0) >= n, 5.0, 0.05)
        time.sleep(cfg.idle_settle)
        present = idle_cpu_percent(procs, cfg.idle_seconds)
        cpu0 = [cpu_seconds(p.pid) for p in procs]
        send = start([bins["bench_client"], "push", "--connect",
                      ",".join(ep(f) for f in fronts), "--count", str(count), "--size", "64"],
                     name=f"push[routes {mode}]")
        r = wait_json(recv, 120)
        cpu1 = [cpu_seconds(p.pid) for p in procs]
        for px in proxies:
            if not px.alive():
                raise RuntimeError(f"{mode} exited: {px.tail()}")
        out = {"idle_absent": absent, "idle_present": present, "msgs_per_s": None,
               "cpu_s_per_M": None}
        if r is None or r["received"] != count:
            note(f"scale routes {n} {mode}: received {r and r['received']} of {count}")
        else:
            out["msgs_per_s"] = r["msgs_per_s"]
            if None not in cpu0 and None not in cpu1:
                out["cpu_s_per_M"] = (sum(cpu1) - sum(cpu0)) / count * 1e6
        return out
    finally:
        stop(send)
        stop(recv)
        for px in proxies:
            px.close()


def scale_routes(bins, modes, tmpdir, cfg):
    absent = Series("scale/routes/idle_absent", "idle CPU, backends absent", "% of a core",
                    "routes", xlog=True, short="idle % core, absent")
    present = Series("scale/routes/idle_present", "idle CPU, backends present, no traffic",
                     "% of a core", "routes", xlog=True, short="idle % core, present")
    rate = Series("scale/routes/msgs_per_s", "forwarding, all routes loaded (64 B)",
                  "msgs/s total", "routes", xlog=True, short="msgs/s")
    cpu = Series("scale/routes/cpu_s_per_M", "proxy CPU per message, all routes loaded",
                 "CPU s / M msgs", "routes", xlog=True, short="CPU s/M msgs")
    count = calibrate(64, bins, tmpdir, cfg.target_seconds, cfg)
    for n in cfg.scale_routes:
        label = f"scale routes {n}"
        c = max(count, 100 * n)
        log(f"{label}: {c} messages per run")
        runs = interleaved(label, modes, cfg.scale_reps, lambda mode: Fresh(),
                           lambda mode, _ctx, n=n, c=c: routes_once(mode, n, c, bins, tmpdir, cfg),
                           lambda _ctx: None)
        for mode in modes:
            for series in (absent, present, rate, cpu):
                series.put(mode, n, [r[series.key.rsplit("/", 1)[1]] for r in runs[mode]])
    SCALE.append(("routes in one process (zmq_proxy: one process per route, CPU summed)",
                  f"idle: CPU over {cfg.idle_seconds:g} s, {cfg.idle_settle:g} s after start "
                  "(and again after the workers connected); forwarding: one PUSH over all "
                  "frontends, one PULL bound on all backends", [absent, present, rate, cpu]))


def scale_clients(bins, modes, tmpdir, cfg):
    rate = Series("scale/clients/req_per_s", "request-reply clients: requests/s", "requests/s",
                  "clients", xlog=True, short="requests/s")
    p50 = Series("scale/clients/p50_us", "request-reply clients: RTT p50", "µs", "clients",
                 xlog=True, short="RTT p50 µs")
    p99 = Series("scale/clients/p99_us", "request-reply clients: RTT p99", "µs", "clients",
                 xlog=True, short="RTT p99 µs")
    client_cpu = Series("scale/clients/client_cpu_pct",
                        "request-reply clients: the client process's CPU", "% of a core",
                        "clients", xlog=True, ratio=False, short="client process % core")
    proxy_cpu = Series("scale/clients/proxy_cpu_pct", "request-reply clients: proxy CPU",
                       "% of a core", "clients", xlog=True, ratio=False, short="proxy % core")
    ready = Series("scale/clients/ready_s", "request-reply clients: until every client had a reply",
                   "s", "clients", xlog=True, ratio=False, short="s until all had a reply")
    lost = Series("scale/clients/lost", "request-reply clients: replies lost", "replies",
                  "clients", xlog=True, ratio=False, short="lost")
    for n in cfg.scale_clients:
        label = f"scale clients {n}"
        log(label)

        def once(mode, ctx, n=n):
            proxy = ctx[0].proxy
            cpu0, t0 = proxy.cpu(), time.monotonic()
            client = start([bins["bench_client"], "clients", "--connect", ctx[0].client_ep,
                            "--clients", str(n), "--size", "64",
                            "--warmup-ms", str(cfg.clients_warmup_ms),
                            "--duration-ms", str(cfg.clients_duration_ms),
                            "--timeout-ms", "2000"], name=f"clients[{mode}]")
            r = wait_json(client, 60 + (cfg.clients_warmup_ms + cfg.clients_duration_ms) / 1000)
            cpu1, t1 = proxy.cpu(), time.monotonic()
            if r and cpu0 is not None and cpu1 is not None:
                # The whole run (warm-up included), as % of a core: is the proxy the limit?
                r["proxy_cpu_pct"] = (cpu1 - cpu0) / (t1 - t0) * 100
            if r and r.get("ready", n) < n:
                note(f"{label} {mode}: only {r['ready']} of {n} clients had a reply before "
                     "the measuring window opened (--ready-timeout-ms)")
            if r and (r["late"] or r["bogus"]):
                note(f"{label} {mode}: {r['late']} replies came after the 2 s timeout (counted "
                     f"lost if sent after the warm-up), {r['bogus']} to the wrong client")
            return r

        runs = interleaved(label, modes, cfg.scale_reps,
                           lambda mode: reqrep_setup(mode, "dealer", bins, tmpdir,
                                                     f"scale-clients-{n}"),
                           once, reqrep_teardown)
        for mode in modes:
            for series in (rate, p50, p99, lost, ready, proxy_cpu, client_cpu):
                series.put(mode, n, [r.get(series.key.rsplit("/", 1)[1]) for r in runs[mode]])
    SCALE.append(("request-reply clients (one DEALER echo worker)",
                  "N clients in one bench_client process, each with one 64 B request in flight "
                  f"(REQ envelope); {cfg.clients_duration_ms} ms measured once every client "
                  f"has had a reply and at least {cfg.clients_warmup_ms} ms have passed; near "
                  "100% client CPU means the client process, not the proxy, sets the pace",
                  [rate, p50, p99, lost, ready, proxy_cpu, client_cpu]))


def workers_once(mode, k, count, bins, topo):
    """k PULL workers connect to the proxy's bound backend; one PUSH sends `count` × 64 B.
    Throughput is all messages over first (any worker) → last (any worker)."""
    pulls = [start([bins["bench_client"], "pull", "--connect", ep(topo.back_port), "--count",
                    str(count), "--idle-timeout-ms", "1000", "--start-timeout-ms", "30000"],
                   name=f"pull[workers {mode}]") for _ in range(k)]
    send = None
    try:
        if not wait_until(lambda: established_to({topo.back_port}).get(topo.back_port, 0) >= k,
                          10.0, 0.02):
            raise RuntimeError(f"{k} workers did not connect")
        if mode == "tidepool":
            wait_until(lambda: (topo.proxy.metric("tidepool_backend_peers") or 0) >= k, 5.0, 0.02)
        time.sleep(0.05)  # the last handshake
        cpu0 = topo.proxy.cpu()
        send = start([bins["bench_client"], "push", "--connect", topo.client_ep, "--count",
                      str(count), "--size", "64"], name=f"push[workers {mode}]")
        rs = [wait_json(p, 120) for p in pulls]
        cpu1 = topo.proxy.cpu()
        got = [r for r in rs if r and r["received"]]
        received = sum(r["received"] for r in got)
        if received != count or not got:
            note(f"scale workers {k} {mode}: received {received} of {count}")
            return None
        span = max(r["t_last"] for r in got) - min(r["t_first"] for r in got)
        out = {"msgs_per_s": (received - 1) / span if span > 0 else None, "cpu_s_per_M": None}
        if cpu0 is not None and cpu1 is not None:
            out["cpu_s_per_M"] = (cpu1 - cpu0) / count * 1e6
        return out
    finally:
        stop(send)
        for p in pulls:
            stop(p)


def scale_workers(bins, modes, tmpdir, cfg):
    rate = Series("scale/workers/msgs_per_s", "workers behind one route: throughput (64 B)",
                  "msgs/s total", "workers", xlog=False, short="msgs/s")
    cpu = Series("scale/workers/cpu_s_per_M", "workers behind one route: proxy CPU per message",
                 "CPU s / M msgs", "workers", xlog=False, short="CPU s/M msgs")
    count = calibrate(64, bins, tmpdir, cfg.target_seconds, cfg)
    for k in cfg.scale_workers:
        label = f"scale workers {k}"
        log(f"{label}: {count} messages per run")
        runs = interleaved(label, modes, cfg.scale_reps,
                           lambda mode: Topology(mode, "pipeline", bins, tmpdir,
                                                 label=f"scale-workers-{k}", back_bind=True),
                           lambda mode, topo, k=k: workers_once(mode, k, count, bins, topo),
                           lambda topo: topo.close())
        for mode in modes:
            rate.put(mode, k, [r["msgs_per_s"] for r in runs[mode]])
            cpu.put(mode, k, [r["cpu_s_per_M"] for r in runs[mode]])
    SCALE.append(("workers behind one pipeline route (the proxy's backend binds, workers "
                  "connect)", "one PUSH client, k PULL workers; all messages over first → last "
                  "message at any worker", [rate, cpu]))


def bench_scale(bins, modes, tmpdir, cfg, results):
    modes = [m for m in modes if m in SCALE_MODES]
    groups = set(cfg.scale_groups.split(","))
    if "backlog" in groups and "tidepool" in modes:
        scale_backlog(bins, tmpdir, cfg)
    if "routes" in groups:
        scale_routes(bins, modes, tmpdir, cfg)
    if "clients" in groups:
        scale_clients(bins, modes, tmpdir, cfg)
    if "workers" in groups:
        scale_workers(bins, modes, tmpdir, cfg)
    for _, _, group in SCALE:
        for series in group:
            results[series.key] = series.to_json()


def render_scale(fmt):
    """One table per group: a row per series and line (mode, or message size), and a ratio row
    tidepool/zmq_proxy where both modes ran; a column per amount of work."""
    out = []
    for title, how, group in SCALE:
        xs = sorted({x for s in group for pts in s.lines.values() for x in pts})
        head = [f"metric \\ {group[0].xlabel}", "mode" if group[0].ratio else "size",
                *[f"{x:,}" for x in xs]]
        body = []
        for s in group:
            for line, pts in s.lines.items():
                body.append([s.short, line, *[cell(pts.get(x)) for x in xs]])
            if s.ratio and "tidepool" in s.lines and "zmq_proxy" in s.lines:
                body.append([s.short, "tidepool/zmq_proxy",
                             *[fmt_ratio(ratio(s.lines["tidepool"].get(x),
                                               s.lines["zmq_proxy"].get(x))) for x in xs]])
        out.append(f"scale — {title}\n({how})")
        out.append(render_table(head, body, fmt))
    return "\n\n".join(out)


# --------------------------------------------------------------------------------------------
# table

def fmt_size(n):
    if n >= MIB and n % MIB == 0:
        return f"{n // MIB} MiB"
    if n >= KIB and n % KIB == 0:
        return f"{n // KIB} KiB"
    return f"{n} B"


def fmt_num(v):
    if v is None:
        return "n/a"
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.2f}M"
    if a >= 1e4:
        return f"{v / 1e3:.0f}k" if v % 1000 == 0 else f"{v / 1e3:.1f}k"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 1:
        return f"{v:.2f}"
    if a == 0:
        return "0"
    return f"{v:.3g}"


def cell(s):
    if not s:
        return "n/a"
    if s["n"] == 1 or s["min"] == s["max"]:
        return fmt_num(s["median"])
    return f"{fmt_num(s['median'])} ({fmt_num(s['min'])}–{fmt_num(s['max'])})"


def ratio(a, b):
    if not a or not b or not b["median"]:
        return None
    return a["median"] / b["median"]


def fmt_ratio(r):
    return "n/a" if r is None else f"{r:.2f}×"


def build_rows(results, cfg):
    """(label, unit, per-mode stats, target text, verdict) rows in print order."""
    rows = []

    def row(label, key, target=None, check=None, ratios=True):
        per = results.get(key)
        if per is None:
            return
        tp, zp = per.get("tidepool"), per.get("zmq_proxy")
        if not ratios:
            tp = None
        verdict = ""
        if check:
            ok = check(per)
            verdict = "n/a" if ok is None else ("met" if ok else "NOT met")
        rows.append((label, per, ratio(tp, zp), ratio(tp, per.get("direct")), target or "",
                     verdict))

    def at_least(k):
        return lambda per: None if ratio(per.get("tidepool"), per.get("zmq_proxy")) is None \
            else ratio(per.get("tidepool"), per.get("zmq_proxy")) >= k

    def at_most(k):
        def check(per):
            r = ratio(per.get("tidepool"), per.get("zmq_proxy"))
            return None if r is None else r <= k
        return check

    at_most_zmq = at_most(1.0)

    for size in cfg.sizes:
        s = fmt_size(size)
        k = 1.2 if size == 64 else 1.0
        row(f"pipeline {s}: msgs/s", f"pipeline/{s}/msgs_per_s", f"≥{k:.1f}× zmq_proxy",
            at_least(k))
        row(f"pipeline {s}: MB/s", f"pipeline/{s}/mb_per_s")
        row(f"pipeline {s}: proxy CPU s / M msgs", f"pipeline/{s}/cpu_s_per_M",
            "≤0.9× zmq_proxy", at_most(0.9))
        row(f"pipeline {s}: % of messages through tidepool's queue", f"pipeline/{s}/queued_pct",
            ratios=False)
    for size in ("64 B", "1 KiB"):
        row(f"ping-pong {size}: RTT p50 µs", f"rtt/{size}/p50_us", "≤1.0× zmq_proxy",
            at_most_zmq)
        row(f"ping-pong {size}: RTT p99 µs", f"rtt/{size}/p99_us", "≤1.0× zmq_proxy",
            at_most_zmq)
        row(f"ping-pong {size}: RTT p99.9 µs", f"rtt/{size}/p999_us")
    row(f"{cfg.outstanding} outstanding: requests/s", "outstanding/req_per_s",
        "≥1.0× zmq_proxy", at_least(1.0))
    row(f"{cfg.outstanding} outstanding: proxy CPU s / M requests", "outstanding/cpu_s_per_M",
        "≤1.0× zmq_proxy", at_most_zmq)
    row(f"{cfg.outstanding} outstanding: replies lost / {fmt_num(cfg.dealer_count)}",
        "outstanding/lost", "0 (every run)",
        lambda per: None if not per.get("tidepool") else per["tidepool"]["max"] == 0,
        ratios=False)
    n = fmt_num(cfg.backlog_count)
    # The drain target is for a 1M backlog (issue 13); another count gets no verdict.
    one_m = cfg.backlog_count == 1_000_000
    row(f"backlog {n} × 64 B: drain s (worker bind → last msg)", "backlog/drain_s",
        "≤1 s" if one_m else "(≤1 s at 1M)",
        lambda per: None if not per.get("tidepool") or not one_m
        else per["tidepool"]["median"] <= 1.0)
    row(f"backlog {n} × 64 B: transfer s (first → last msg)", "backlog/transfer_s")
    row(f"backlog {n} × 64 B: memory B / queued msg beyond payload", "backlog/bytes_per_msg",
        "≤64 B", lambda per: None if not per.get("tidepool") else per["tidepool"]["median"] <= 64)
    return rows


def render(rows, fmt):
    head = ["workload", *MODES, "tidepool/zmq_proxy", "tidepool/direct", "target", "status"]
    body = [[label, *[cell(per.get(m)) if m in per else "—" for m in MODES], fmt_ratio(r_zp),
             fmt_ratio(r_d), target, verdict]
            for label, per, r_zp, r_d, target, verdict in rows]
    return render_table(head, body, fmt)


def render_table(head, body, fmt):
    if fmt == "markdown":
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    out = ["  ".join(h.ljust(w) for h, w in zip(head, widths))]
    out.append("  ".join("-" * w for w in widths))
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in body]
    return "\n".join(out)


def machine_info(bins):
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "nproc": os.cpu_count(), "cpu": model, "kernel": platform.release(),
            "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg())}
    try:
        import zmq  # only for the version string; hot loops are C++
        info["libzmq"] = zmq.zmq_version()
    except ImportError:
        pass
    if bins.get("tidepool"):
        try:
            info["tidepool"] = subprocess.run([bins["tidepool"], "--version"], capture_output=True,
                                              text=True, timeout=10).stdout.strip()
        except Exception:  # noqa: BLE001
            info["tidepool"] = "?"
    return info


# --------------------------------------------------------------------------------------------

def prepare_tidepool(path, tmpdir):
    """Copies the binary so a rebuild during the run cannot change it half-way."""
    if not path:
        note("tidepool: no binary given; its column is n/a")
        return None
    for _ in range(30):  # the lead's build may be relinking it right now
        if os.path.isfile(path) and os.access(path, os.X_OK):
            copy = os.path.join(tmpdir, "tidepool")
            shutil.copy2(path, copy)
            try:
                r = subprocess.run([copy, "--version"], capture_output=True, timeout=10)
                if r.returncode == 0:
                    return copy
            except (OSError, subprocess.TimeoutExpired):
                pass
        time.sleep(2)
    note(f"tidepool: {path} missing or not runnable; its column is n/a")
    return None


def write_plots(directory, info):
    """One PNG per scale series. matplotlib is imported here only, so the benchmark runs (and
    prints its tables) without it."""
    try:
        import plot  # tests/bench/plot.py; needs python3-matplotlib
        written = plot.write_all(directory, [s for _, _, g in SCALE for s in g],
                                 f"{info['date']}, {info['nproc']} CPUs, load {info['loadavg']}")
    except ImportError as e:
        note(f"--plot: no charts written ({e}); install Debian's python3-matplotlib")
        return
    log(f"charts: {', '.join(written)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", required=True, help="directory with bench_client, bench_zmq_proxy")
    ap.add_argument("--tidepool", default="", help="tidepool binary (omit: tidepool column n/a)")
    ap.add_argument("--reps", type=int, default=5, help="repetitions per figure (median, min–max)")
    ap.add_argument("--only", default=None,
                    help="comma-separated subset of pipeline,pingpong,outstanding,backlog,scale "
                         "(default: all but scale, which takes several minutes; --smoke adds "
                         "scale with tiny sizes)")
    ap.add_argument("--modes", default=",".join(MODES), help="subset of direct,zmq_proxy,tidepool")
    ap.add_argument("--sizes", default="64,1024,16384,1048576", help="pipeline message sizes")
    ap.add_argument("--target-seconds", type=float, default=1.0,
                    help="pipeline run length the message counts are scaled to")
    ap.add_argument("--count-scale", type=float, default=1.0, help="multiply pipeline counts")
    ap.add_argument("--pingpong-count", type=int, default=10000, help="round trips per run")
    ap.add_argument("--dealer-count", type=int, default=100000,
                    help="requests per run, outstanding workload")
    ap.add_argument("--outstanding", type=int, default=1000)
    ap.add_argument("--backlog-count", type=int, default=1000000)
    scale = ap.add_argument_group("scale workload (--only scale)")
    scale.add_argument("--scale-reps", type=int, default=3, help="repetitions per scale figure")
    scale.add_argument("--scale-groups", default="backlog,routes,clients,workers",
                       help="which series groups to run")
    scale.add_argument("--scale-backlog", default="10000,100000,1000000",
                       help="backlog message counts")
    scale.add_argument("--scale-sizes", default="64,1024", help="backlog message sizes")
    scale.add_argument("--scale-routes", default="1,10,100", help="route counts")
    scale.add_argument("--scale-clients", default="1,100,1000", help="request-reply client counts")
    scale.add_argument("--scale-workers", default="1,2,4", help="worker counts behind one route")
    scale.add_argument("--idle-seconds", type=float, default=3.0,
                       help="idle CPU measuring window")
    scale.add_argument("--idle-settle", type=float, default=2.0,
                       help="wait before each idle window (after start, after workers connect)")
    scale.add_argument("--clients-duration-ms", type=int, default=2000)
    scale.add_argument("--clients-warmup-ms", type=int, default=1000)
    ap.add_argument("--plot", default="", metavar="DIR",
                    help="also write one PNG chart per scale series into DIR "
                         "(needs python3-matplotlib)")
    ap.add_argument("--format", choices=("text", "markdown"), default="text")
    ap.add_argument("--json", default="", help="also write raw results here")
    ap.add_argument("--perf", default="", metavar="DIR",
                    help="attach `perf record -g` to every proxy process, one file per workload "
                         "in DIR (skews the figures a little; for finding what limits tidepool)")
    ap.add_argument("--tidepool-route", default="", metavar="JSON",
                    help="JSON merged into every generated tidepool route to try a setting, "
                         "e.g. {\"backend\": {\"hwm\": 1000}} (default: tidepool's defaults)")
    ap.add_argument("--smoke", action="store_true",
                    help="tiny counts, 1 repetition: proves the benchmark runs; measures nothing")
    cfg = ap.parse_args()
    if cfg.only is None:
        cfg.only = "pipeline,pingpong,outstanding,backlog" + (",scale" if cfg.smoke else "")
    if cfg.smoke:
        cfg.reps, cfg.pingpong_count, cfg.dealer_count = 1, 200, 3000
        cfg.backlog_count = 2000
        cfg.sizes = "64,1024"
        cfg.scale_reps, cfg.scale_backlog, cfg.scale_routes = 1, "1000,3000", "1,3"
        cfg.scale_clients, cfg.scale_workers = "1,10", "1,2"
        cfg.idle_seconds, cfg.idle_settle = 0.2, 0.1
        cfg.clients_duration_ms, cfg.clients_warmup_ms = 300, 100
    cfg.sizes = [int(s) for s in str(cfg.sizes).split(",") if s]
    for name in ("scale_backlog", "scale_sizes", "scale_routes", "scale_clients", "scale_workers"):
        setattr(cfg, name, [int(v) for v in str(getattr(cfg, name)).split(",") if v])
    only = set(cfg.only.split(","))
    modes = [m for m in MODES if m in cfg.modes.split(",")]

    if cfg.tidepool_route:
        ROUTE_OVERRIDES.update(json.loads(cfg.tidepool_route))
        note(f"tidepool routes use {cfg.tidepool_route} on top of the defaults")
    tmpdir = tempfile.mkdtemp(prefix="tidepool-bench-")
    if cfg.perf:
        global PERF_DIR
        PERF_DIR = os.path.abspath(cfg.perf)
        os.makedirs(PERF_DIR, exist_ok=True)
        note(f"profiled with perf (figures skewed): perf report -i {PERF_DIR}/MODE-WORKLOAD.perf.data")
    bins = {"bench_client": os.path.join(cfg.bin_dir, "bench_client"),
            "bench_zmq_proxy": os.path.join(cfg.bin_dir, "bench_zmq_proxy")}
    for k, v in bins.items():
        if not os.access(v, os.X_OK):
            sys.exit(f"bench: {v} not found (build {k} first: tests/bench/run.sh does)")
    if "tidepool" in modes or "backlog" in only or "scale" in only:
        bins["tidepool"] = prepare_tidepool(cfg.tidepool, tmpdir)
    if not bins.get("tidepool"):
        modes = [m for m in modes if m != "tidepool"]

    def on_signal(signum, _frame):
        stop_all()
        sys.exit(128 + signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    info = machine_info(bins)
    log(f"machine: {info}; reps={cfg.reps}; modes={modes}; tmp={tmpdir}")
    results = {}
    t0 = time.monotonic()
    try:
        if "pipeline" in only:
            bench_pipeline(bins, modes, tmpdir, cfg, results)
        if "pingpong" in only:
            bench_pingpong(bins, modes, tmpdir, cfg, results)
        if "outstanding" in only:
            bench_outstanding(bins, modes, tmpdir, cfg, results)
        if "backlog" in only and bins.get("tidepool"):
            bench_backlog(bins, tmpdir, cfg, results)
        if "scale" in only:
            bench_scale(bins, modes, tmpdir, cfg, results)
    finally:
        stop_all()

    rows = build_rows(results, cfg)
    print()
    print(f"tidepool benchmark — {info['date']} — {info['nproc']} CPUs, {info['cpu']}, "
          f"Linux {info['kernel']}, libzmq {info.get('libzmq', '?')}, "
          f"tidepool {info.get('tidepool', 'n/a')}")
    reps = [f"median of {cfg.reps} runs (min–max)"] if rows else []
    if SCALE:
        reps.append(f"scale: median of {cfg.scale_reps} runs (min–max)")
    print(f"{'; '.join(reps)}; load average at start {info['loadavg']}; "
          f"took {time.monotonic() - t0:.0f} s")
    if rows:
        print()
        print(render(rows, cfg.format))
    if SCALE:
        print()
        print(render_scale(cfg.format))
    if cfg.plot and SCALE:
        write_plots(cfg.plot, info)
    if NOTES:
        print()
        for n in NOTES:
            print(f"note: {n}")
    if cfg.json:
        with open(cfg.json, "w") as f:
            json.dump({"machine": info, "reps": cfg.reps, "results": results, "notes": NOTES},
                      f, indent=1)
    if not cfg.perf:  # keep the copied tidepool binary for perf report
        shutil.rmtree(tmpdir, ignore_errors=True)

    if cfg.smoke:
        # The smoke run only proves every path produces a figure; it judges no speed.
        missing = [label for label, per, *_ in rows
                   if any(m in modes and per.get(m) is None for m in per)]
        missing += [f"{series.key} {line} {x}" for _, _, group in SCALE for series in group
                    for line, pts in series.lines.items() for x, v in pts.items() if v is None]
        if missing:
            print(f"smoke: no figure for {missing}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
