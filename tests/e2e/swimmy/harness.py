"""Process, config and metrics plumbing for the Swimmy end-to-end suite.

Everything is bounded in time: waits poll a condition until a deadline and fail with a
message when it passes. Every process started here dies with the driver (PDEATHSIG) and is
killed by cleanup() at the end.
"""

import copy
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "support"))
import test_ports  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3"  # Debian's, with python3-zmq

# The shipped config's endpoints, per SWIMMY.md. Rewriting them to free ports is the only
# change the tests make to the file users copy.
SHIPPED_PORTS = {"req": 5580, "svc": 5590, "res": 5591, "brain": 5581}

_procs = []
_libc = ctypes.CDLL(None, use_errno=True)


class Failure(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


free_port = test_ports.free_port  # shared with the C++ harness (see the module)


def wait_until(pred, timeout, what, interval=0.05):
    """Polls pred() until it returns a truthy value; fails after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise Failure(f"timed out after {timeout:.0f} s waiting for: {what}")
        time.sleep(interval)


def _die_with_parent():
    _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: no orphans if the driver dies


# ---------------------------------------------------------------- config


def load_shipped(source_dir):
    path = os.path.join(source_dir, "deploy", "swimmy", "tidepool.json")
    with open(path) as f:
        return path, json.load(f)


def rewrite_config(cfg, ports, http_port, log_level="info"):
    """The shipped config with its four Swimmy ports mapped to free ones on loopback."""
    cfg = copy.deepcopy(cfg)
    by_shipped = {SHIPPED_PORTS[k]: ports[k] for k in SHIPPED_PORTS}
    seen = set()

    def fix(ep):
        proto, rest = ep.split("://", 1)
        host, port = rest.rsplit(":", 1)
        check(int(port) in by_shipped, f"unexpected endpoint {ep} in shipped config")
        seen.add(int(port))
        host = "127.0.0.1" if host in ("*", "0.0.0.0", "localhost") else host
        return f"{proto}://{host}:{by_shipped[int(port)]}"

    for r in cfg["routes"]:
        for side in ("frontend", "backend"):
            for key in ("bind", "connect"):
                r[side][key] = [fix(ep) for ep in r[side].get(key, [])]
    check(seen == set(by_shipped), f"shipped config misses Swimmy ports: {seen}")
    cfg["http"]["listen"] = f"127.0.0.1:{http_port}"
    cfg.setdefault("log", {})["level"] = log_level
    return cfg


def route(cfg, name):
    for r in cfg["routes"]:
        if r["name"] == name:
            return r
    raise Failure(f"route {name} not in config")


# ---------------------------------------------------------------- metrics


def parse_prom(text):
    """Prometheus text exposition → list of (name, labels dict, value)."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if "{" in line:
            name, rest = line.split("{", 1)
            labels_s, value_s = rest.rsplit("}", 1)
            labels = {}
            i = 0
            while i < len(labels_s):
                eq = labels_s.index("=", i)
                key = labels_s[i:eq].strip().lstrip(",").strip()
                j = eq + 2  # past ="
                val = []
                while labels_s[j] != '"':
                    if labels_s[j] == "\\":
                        j += 1
                    val.append(labels_s[j])
                    j += 1
                labels[key] = "".join(val)
                i = j + 1
                while i < len(labels_s) and labels_s[i] in ", ":
                    i += 1
        else:
            name, value_s = line.split(None, 1)
            labels = {}
        value_s = value_s.split()[0]
        out.append((name.strip(), labels, float(value_s)))
    return out


class Metrics:
    def __init__(self, samples):
        self.samples = samples

    def series(self, name, **labels):
        return [(l, v) for n, l, v in self.samples
                if n == name and all(l.get(k) == w for k, w in labels.items())]

    def get(self, name, **labels):
        """Sum over matching series; None when no series matches."""
        s = self.series(name, **labels)
        return sum(v for _, v in s) if s else None

    def val(self, name, **labels):
        v = self.get(name, **labels)
        check(v is not None, f"metric {name}{labels} missing from /metrics")
        return v


# ---------------------------------------------------------------- processes


class Proc:
    """A child process; stdout lines that parse as JSON become events."""

    def __init__(self, name, argv, log_path=None, events=True):
        self.name = name
        self.argv = argv
        self.events = []
        self._lock = threading.Lock()
        self._t = None
        self.stderr_path = log_path or os.devnull
        self._err = open(self.stderr_path, "ab")
        self.p = subprocess.Popen(
            argv, stdout=subprocess.PIPE if events else subprocess.DEVNULL,
            stderr=self._err, preexec_fn=_die_with_parent, cwd=HERE)
        _procs.append(self)
        if events:
            self._t = threading.Thread(target=self._read, daemon=True)
            self._t.start()

    def _read(self):
        for line in self.p.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            with self._lock:
                self.events.append(ev)

    @property
    def pid(self):
        return self.p.pid

    def evs(self, kind):
        with self._lock:
            return [e for e in self.events if e.get("ev") == kind]

    def count(self, kind):
        with self._lock:
            return sum(1 for e in self.events if e.get("ev") == kind)

    def wait_event(self, kind, timeout):
        def got():
            if self.p.poll() is not None and not self.evs(kind):
                raise Failure(f"{self.name} exited ({self.p.returncode}) before '{kind}'")
            return self.evs(kind)
        return wait_until(got, timeout, f"{self.name}: {kind}")[0]

    def alive(self):
        return self.p.poll() is None

    def kill(self):
        """SIGKILL and reap: the process is gone when this returns."""
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait(timeout=10)
        self._err.close()
        self._drain()

    def _drain(self):
        # Every line the process wrote before it died is in self.events once this returns.
        if getattr(self, "_t", None) is not None:
            self._t.join(timeout=5)

    def terminate(self, timeout=30):
        """SIGTERM, wait up to timeout, then SIGKILL. Returns the exit code."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(timeout=10)
        self._err.close()
        self._drain()
        return self.p.returncode


def peer(name, script, *args, log_dir):
    return Proc(name, [PYTHON, os.path.join(HERE, script), *map(str, args)],
                log_path=os.path.join(log_dir, f"{name}.err"))


class Tidepool(Proc):
    def __init__(self, binary, cfg, workdir, http_port, name="tidepool"):
        self.cfg_path = os.path.join(workdir, f"{name}.json")
        with open(self.cfg_path, "w") as f:
            json.dump(cfg, f, indent=2)
        self.http = f"http://127.0.0.1:{http_port}"
        self.log_path = os.path.join(workdir, f"{name}.log")
        super().__init__(name, [binary, "--config", self.cfg_path],
                         log_path=self.log_path, events=False)

    def get(self, path, timeout=2.0):
        try:
            with urllib.request.urlopen(self.http + path, timeout=timeout) as r:
                return r.status, r.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode("utf-8", "replace")
        except (urllib.error.URLError, ConnectionError, OSError):
            return None, ""

    def wait_ready(self, timeout=15):
        def ready():
            if self.p.poll() is not None:
                raise Failure(f"tidepool exited with {self.p.returncode} at start-up:\n"
                              + self.log_tail())
            return self.get("/readyz")[0] == 200
        wait_until(ready, timeout, "tidepool /readyz 200")

    def metrics(self):
        status, body = self.get("/metrics")
        check(status == 200, f"GET /metrics returned {status}")
        return Metrics(parse_prom(body))

    def rss_kib(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return None

    def log_tail(self, n=30):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
            return "\n".join(lines[-n:])
        except OSError:
            return "(no log)"


class Sampler:
    """Scrapes /metrics every interval into (t, Metrics) pairs, for drain times and maxima."""

    def __init__(self, tp, interval=0.1):
        self.tp = tp
        self.interval = interval
        self.samples = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            t = time.monotonic()
            try:
                m = self.tp.metrics()
                self.samples.append((t, m))
            except Failure:
                pass
            self._stop.wait(self.interval)

    def stop(self):
        self._stop.set()
        self._t.join(timeout=5)

    def max_of(self, name, **labels):
        vals = [m.get(name, **labels) for _, m in self.samples]
        vals = [v for v in vals if v is not None]
        return max(vals) if vals else None

    def first_time(self, after, pred):
        for t, m in self.samples:
            if t >= after and pred(m):
                return t
        return None


def cleanup():
    for p in reversed(_procs):
        try:
            if p.p.poll() is None:
                p.p.kill()
            p.p.wait(timeout=10)
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
    _procs.clear()


def log(msg):
    sys.stdout.write(msg + "\n")
    sys.stdout.flush()
