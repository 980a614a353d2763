#!/usr/bin/python3
"""Spool throughput through the real binary (run.sh spool is the entry point; see README.md,
"Durable spool").

One PUSH client sends N messages of --size bytes to a tidepool pipeline route (PULL → PUSH),
for each spool setting (`always`, `interval`, none) and each backend case:

  absent   no worker: every message is read, spooled and queued. Messages/s is the queue's
           growth, read from /metrics every 10 ms: from the first reading above 0 to the
           reading that shows all N queued (the queue is sized to hold all of them).
  present  a PULL worker is bound and connected before the client starts. Messages/s is timed
           at the worker from the first message to the last (as in bench.py). Messages that
           find the queue empty and the backend ready take the fast path and are not spooled;
           "queued %" says how many went through the queue (and so the spool) instead.

"msgs/fsync" is spooled messages per successful fdatasync (/status spool.fsyncs; n/a for
builds that do not report it): about 1 with one fdatasync per message, the read batch size
with group commit (with interval, the fsyncs of the timer).

The client stays connected until tidepool has read everything. Every run starts a fresh
tidepool on a fresh spool directory. Give --tidepool more than once (LABEL=PATH) to compare
builds: the runs of one repetition go through every setting and binary in turn, rotated each
repetition, so a load change on a shared machine hits them alike. It prints the median and
min–max of the repetitions, the ratio to the first binary, every value, and the load average
before and after. It never fails because the machine is slow.

  tests/bench/run.sh spool --reps 5
  tests/bench/run.sh spool --bin-dir build-bench/tests/bench \
      --tidepool before=old/tidepool --tidepool after=build-bench/proxy/tidepool
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (helpers: processes, ports, statistics, formatting)

from bench import ep, free_port, fmt_num, log, start, stats, stop, wait_json, wait_listening  # noqa: E402,E501

POLICIES = ("always", "interval", "none")
BACKENDS = ("absent", "present")
NOTES = []


def note(msg):
    NOTES.append(msg)
    log(f"note: {msg}")


def metrics(http_port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=2) as r:
            return r.read().decode()
    except Exception:  # noqa: BLE001 - not up, or busy
        return None


def metric_sum(text, name, route="bench"):
    """Sum of every series of `name` for the route (all label values), or None."""
    if text is None:
        return None
    pat = re.compile(r"^" + re.escape(name) + r"\{([^}]*)\}\s+(\S+)", re.M)
    values = [float(v) for labels, v in pat.findall(text) if f'route="{route}"' in labels]
    return sum(values) if values else None


def fs_type(path):
    """Type of the filesystem holding `path`, from /proc/mounts (longest mount point)."""
    path, best, kind = os.path.realpath(path), "", "?"
    try:
        with open("/proc/mounts") as f:
            for line in f:
                parts = line.split()
                mount = parts[1].replace("\\040", " ")
                inside = path == mount or path.startswith(mount.rstrip("/") + "/")
                if inside and len(mount) >= len(best):
                    best, kind = mount, f"{parts[2]} ({parts[0]} on {mount})"
    except OSError:
        pass
    return kind


class Tidepool:
    def __init__(self, binary, policy, count, spool_dir, tmpdir, fsync_interval_ms):
        self.front, self.back, self.http = free_port(), free_port(), free_port()
        self.count = count
        route = {
            "name": "bench",
            "frontend": {"type": "pull", "bind": [ep(self.front)]},
            "backend": {"type": "push", "connect": [ep(self.back)]},
            # Room for the whole run: with no backend every message must be queued.
            "queue": {"max_messages": count + 1000, "max_bytes": 1 << 30, "overflow": "block"},
        }
        if policy != "none":
            route["spool"] = {"dir": spool_dir, "fsync": policy,
                              "fsync_interval_ms": fsync_interval_ms}
        cfg = {"http": {"listen": f"127.0.0.1:{self.http}"},
               "log": {"level": "warn", "format": "text"},
               "shutdown": {"drain_timeout_ms": 200}, "routes": [route]}
        cfg_path = os.path.join(tmpdir, f"tidepool-{self.front}.json")
        with open(cfg_path, "w") as f:
            json.dump(cfg, f, indent=1)
        self.log_path = os.path.join(tmpdir, f"tidepool-{self.front}.log")
        self.log = open(self.log_path, "w")
        self.proc = start([binary, "--config", cfg_path], stdout=self.log, stderr=self.log,
                          name="tidepool")
        if not bench.wait_until(lambda: self.ready() or self.proc.poll() is not None, 15, 0.02) \
                or self.proc.poll() is not None:
            raise RuntimeError(f"tidepool did not become ready: {self.tail()}")

    def ready(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/readyz", timeout=1) as r:
                return r.status == 200
        except Exception:  # noqa: BLE001
            return False

    def metric(self, name):
        return metric_sum(metrics(self.http), name)

    def fsyncs(self):
        """The spool's successful fdatasyncs so far (/status), None when not reported."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/status", timeout=2) as r:
                spool = json.loads(r.read().decode())["routes"][0].get("spool") or {}
        except Exception:  # noqa: BLE001 - older builds, no spool
            return None
        return spool.get("fsyncs")

    def spool_result(self, rate, spooled):
        """rate, % of the messages spooled, and messages per fdatasync (/status follows the
        loop within 100 ms)."""
        time.sleep(0.15)
        fsyncs = self.fsyncs()
        return {"msgs_per_s": rate, "queued_pct": 100.0 * spooled / self.count,
                "msgs_per_fsync": spooled / fsyncs if fsyncs and spooled else None}

    def tail(self):
        self.log.flush()
        try:
            with open(self.log_path) as f:
                return " | ".join(f.read().strip().splitlines()[-3:])
        except OSError:
            return ""

    def close(self):
        stop(self.proc, 10.0)
        self.log.close()


def start_sender(tp, bins, count, size):
    """A PUSH client that stays connected until release_sender(): one that leaves while
    tidepool still has unread data in flight can have its connection reset, and the kernel
    then discards the rest."""
    return start([bins["bench_client"], "push", "--connect", ep(tp.front), "--count", str(count),
                  "--size", str(size), "--hold-stdin", "1"], name="push",
                 stdin=subprocess.PIPE)


def release_sender(send):
    return wait_json(send, 30)  # communicate() closes its stdin


def run_absent(tp, bins, count, size, timeout):
    started = time.monotonic()
    send = start_sender(tp, bins, count, size)
    first = None  # (time, queued) of the first reading above 0
    last = None
    queued = None
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            text = metrics(tp.http)
            now = time.monotonic()
            queued = metric_sum(text, "tidepool_queue_messages")
            if queued:
                if first is None:
                    first = (now, queued)
                if queued >= count:
                    last = now
                    break
            time.sleep(0.01)
    finally:
        release_sender(send)
    dropped = tp.metric("tidepool_dropped_messages_total")
    if last is None:
        note(f"absent: queue reached {queued} of {count} within {timeout:.0f} s; "
             f"dropped {dropped}; {tp.tail()}")
        return None
    if dropped:
        note(f"absent: {dropped:.0f} messages dropped")
    if last <= first[0]:
        # Too short for two readings (a smoke run): timed from the client's start instead.
        note("absent: all messages queued before the second reading; raise --count")
        first = (started, 0)
    return tp.spool_result((count - first[1]) / (last - first[0]), count)


def run_present(tp, bins, count, size, timeout):
    recv = start([bins["bench_client"], "pull", "--bind", ep(tp.back), "--count", str(count),
                  "--idle-timeout-ms", "10000"], name="pull")
    try:
        if not wait_listening(tp.back):
            raise RuntimeError("worker did not listen")
        if not bench.wait_until(lambda: tp.metric("tidepool_backend_up") == 1.0, 10, 0.02):
            raise RuntimeError("tidepool's backend did not come up")
        send = start_sender(tp, bins, count, size)
        res = wait_json(recv, timeout)
        release_sender(send)
    finally:
        stop(recv)
    if res is None or res["received"] != count:
        note(f"present: worker received {res and res['received']} of {count}; {tp.tail()}")
        return None
    flushed = tp.metric("tidepool_flushed_messages_total") or 0
    return tp.spool_result(res["msgs_per_s"], flushed)


def parse_binaries(values):
    """--tidepool PATH or LABEL=PATH, repeatable → [(label, path)]."""
    out = []
    for i, v in enumerate(values):
        label, sep, path = v.partition("=")
        if not sep or "/" in label:
            label, path = (os.path.basename(v) if len(values) > 1 else "tidepool"), v
        out.append((label or f"bin{i + 1}", path))
    labels = [label for label, _ in out]
    if len(set(labels)) != len(labels):
        sys.exit(f"spool bench: give the binaries distinct labels (LABEL=PATH): {labels}")
    return out


def render(head, body, fmt):
    if fmt == "markdown":
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in body]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", required=True, help="directory with bench_client")
    ap.add_argument("--tidepool", action="append", required=True, metavar="[LABEL=]PATH",
                    help="tidepool binary; repeat it (e.g. before=old/tidepool "
                         "after=new/tidepool) to compare builds run by run, interleaved")
    ap.add_argument("--reps", type=int, default=5, help="repetitions per figure")
    ap.add_argument("--policies", default=",".join(POLICIES), help="always,interval,none")
    ap.add_argument("--backends", default=",".join(BACKENDS), help="absent,present")
    ap.add_argument("--size", type=int, default=100, help="message size in bytes")
    ap.add_argument("--count", type=int, default=500000,
                    help="messages per run with interval or no spool")
    ap.add_argument("--always-count", type=int, default=100000,
                    help="messages per run with fsync always")
    ap.add_argument("--fsync-interval-ms", type=int, default=100)
    ap.add_argument("--spool-dir", default="",
                    help="where the spools live (default: a new directory in /var/tmp, i.e. on "
                         "disk, not tmpfs); the filesystem type is printed")
    ap.add_argument("--format", choices=("text", "markdown"), default="text")
    ap.add_argument("--json", default="", help="also write the raw figures here")
    ap.add_argument("--smoke", action="store_true",
                    help="tiny counts, 1 repetition: proves the script runs; measures nothing")
    cfg = ap.parse_args()
    if cfg.smoke:
        cfg.reps, cfg.count, cfg.always_count = 1, 3000, 1000
    policies = [p for p in cfg.policies.split(",") if p]
    backends = [b for b in cfg.backends.split(",") if b]
    for p in policies:
        if p not in POLICIES:
            sys.exit(f"spool bench: unknown policy {p!r} (always, interval, none)")
    for b in backends:
        if b not in BACKENDS:
            sys.exit(f"spool bench: unknown backend case {b!r} (absent, present)")
    bins = {"bench_client": os.path.join(cfg.bin_dir, "bench_client")}
    if not os.access(bins["bench_client"], os.X_OK):
        sys.exit(f"spool bench: {bins['bench_client']} not found (tests/bench/run.sh builds it)")

    tmpdir = tempfile.mkdtemp(prefix="tidepool-spool-bench-")
    own_spool_dir = not cfg.spool_dir
    spool_root = cfg.spool_dir or tempfile.mkdtemp(prefix="tidepool-spool-bench-",
                                                   dir="/var/tmp" if os.path.isdir("/var/tmp")
                                                   else None)
    os.makedirs(spool_root, exist_ok=True)
    binaries = []  # (label, copy to run, path given, --version)
    for label, path in parse_binaries(cfg.tidepool):
        copy_dir = os.path.join(tmpdir, label)
        os.makedirs(copy_dir)
        copy = bench.prepare_tidepool(path, copy_dir)
        if not copy:
            sys.exit(f"spool bench: {path} is not runnable")
        binaries.append((label, copy, os.path.abspath(path),
                         bench.machine_info({"tidepool": copy}).get("tidepool", "?")))
    info = bench.machine_info({})
    info["spool_fs"] = fs_type(spool_root)
    info["tidepool"] = {label: f"{path} ({version})" for label, _, path, version in binaries}
    load_before = info["loadavg"]
    log(f"machine: {info}; reps={cfg.reps}; spools in {spool_root}")

    def on_signal(signum, _frame):
        bench.stop_all()
        sys.exit(128 + signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    labels = [b[0] for b in binaries]
    cases = [(label, p, b) for p in policies for b in backends for label in labels]
    runs = {c: [] for c in cases}
    t0 = time.monotonic()
    try:
        for rep in range(cfg.reps):
            # Rotated each repetition: no case always runs first, or right after the same one.
            order = cases[rep % len(cases):] + cases[:rep % len(cases)]
            for label, policy, backend in order:
                binary = next(b[1] for b in binaries if b[0] == label)
                count = cfg.always_count if policy == "always" else cfg.count
                spool_dir = os.path.join(spool_root, f"rep{rep}-{label}-{policy}-{backend}")
                tp = None
                try:
                    tp = Tidepool(binary, policy, count, spool_dir, tmpdir,
                                  cfg.fsync_interval_ms)
                    run = run_absent if backend == "absent" else run_present
                    r = run(tp, bins, count, cfg.size, timeout=120 + count / 1000)
                    if r is not None:
                        runs[(label, policy, backend)].append(r)
                        log(f"rep {rep + 1}/{cfg.reps} {label} {policy:8} backend {backend:7}: "
                            f"{fmt_num(r['msgs_per_s'])} msgs/s, {r['queued_pct']:.0f}% queued")
                except Exception as e:  # noqa: BLE001 - a benchmark reports, it does not fail
                    note(f"{label} {policy} {backend}: {e}")
                finally:
                    if tp:
                        tp.close()
                    shutil.rmtree(spool_dir, ignore_errors=True)
    finally:
        bench.stop_all()
    load_after = " ".join(f"{x:.2f}" for x in os.getloadavg())

    def cell(values):
        st = stats(values)
        if not st:
            return "n/a"
        if st["n"] == 1:
            return fmt_num(st["median"])
        return f"{fmt_num(st['median'])} ({fmt_num(st['min'])}–{fmt_num(st['max'])})"

    def median(label, policy, backend):
        st = stats([r["msgs_per_s"] for r in runs[(label, policy, backend)]])
        return st["median"] if st else None

    print()
    print(f"tidepool spool benchmark — {info['date']} — {info['nproc']} CPUs, {info['cpu']}, "
          f"Linux {info['kernel']}, libzmq {info.get('libzmq', '?')}")
    for label, _, path, version in binaries:
        print(f"  {label}: {path} ({version})")
    print(f"{cfg.size} B messages, PUSH → tidepool (PULL/PUSH) → PULL; spool on "
          f"{info['spool_fs']}; median of {cfg.reps} runs (min–max); messages per run: "
          f"{cfg.always_count} (always), {cfg.count} (interval, none); load average "
          f"{load_before} before, {load_after} after; took {time.monotonic() - t0:.0f} s")
    print()
    head = ["spool", "backend"]
    for label in labels:
        head += [f"{label} msgs/s", f"{label} queued %", f"{label} msgs/fsync"]
    head += [f"{label}/{labels[0]}" for label in labels[1:]]
    body = []
    for policy in policies:
        for backend in backends:
            row = [policy, backend]
            for label in labels:
                rs = runs[(label, policy, backend)]
                q = stats([r["queued_pct"] for r in rs])
                f = stats([r.get("msgs_per_fsync") for r in rs] if policy != "none" else [])
                row += [cell([r["msgs_per_s"] for r in rs]),
                        "n/a" if not q else f"{q['median']:.0f}",
                        "n/a" if not f else f"{f['median']:.1f}"]
            base = median(labels[0], policy, backend)
            for label in labels[1:]:
                m = median(label, policy, backend)
                row.append(f"{m / base:.1f}×" if m and base else "n/a")
            body.append(row)
    print(render(head, body, cfg.format))
    print()
    print("every run, msgs/s:")
    for label, policy, backend in sorted(cases, key=lambda c: (policies.index(c[1]),
                                                                backends.index(c[2]),
                                                                labels.index(c[0]))):
        values = ", ".join(fmt_num(r["msgs_per_s"]) for r in runs[(label, policy, backend)])
        print(f"  {label} {policy} {backend}: {values or 'n/a'}")
    if NOTES or bench.NOTES:
        print()
        for n in NOTES + bench.NOTES:
            print(f"note: {n}")
    if cfg.json:
        with open(cfg.json, "w") as f:
            json.dump({"machine": info, "load_after": load_after, "reps": cfg.reps,
                       "size": cfg.size, "count": cfg.count, "always_count": cfg.always_count,
                       "results": {f"{label}/{p}/{b}": runs[(label, p, b)]
                                   for label, p, b in cases},
                       "notes": NOTES + bench.NOTES}, f, indent=1)
    shutil.rmtree(tmpdir, ignore_errors=True)
    if own_spool_dir:
        shutil.rmtree(spool_root, ignore_errors=True)
    if cfg.smoke:
        missing = [f"{label}/{p}/{b}" for label, p, b in cases if not runs[(label, p, b)]]
        if missing:
            print(f"smoke: no figure for {missing}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
