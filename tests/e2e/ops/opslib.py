"""Shared helpers for the operations-kit tests (stdlib only; run with /usr/bin/python3).

Free ports, processes that are always stopped, HTTP GETs, Prometheus text parsing, and the
PromQL expressions the dashboard and the alert rules use.
"""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "support"))
import test_ports  # noqa: E402


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


free_port = test_ports.free_port  # shared with the C++ harness (see the module)


def free_ports(n):
    ports = set()
    while len(ports) < n:
        ports.add(free_port())
    return sorted(ports)


def wait_until(fn, timeout, what, interval=0.2):
    """Polls fn() until it returns a truthy value; raises with `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - the last error is reported on timeout
            last = e
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def http_get(url, timeout=5.0):
    """Returns (status, body text); HTTP errors are returned, not raised."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


class Proc:
    """A child process with its output in a file; stop() always ends it."""

    def __init__(self, name, argv, workdir, env=None):
        self.name = name
        self.argv = argv
        self.log_path = os.path.join(workdir, f"{name}.log")
        self._log = open(self.log_path, "wb")
        log(f"start {name}: {' '.join(argv)}")
        self.p = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, env=env, start_new_session=True)

    def alive(self):
        return self.p.poll() is None

    def output(self):
        if not self._log.closed:
            self._log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        """Sends sig, waits up to timeout, then SIGKILL. Returns the exit code."""
        if self.p.poll() is None:
            try:
                self.p.send_signal(sig)
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log(f"{self.name} ignored {sig!r} for {timeout}s: SIGKILL")
                self.p.kill()
                self.p.wait(timeout=10)
        self._log.close()
        return self.p.returncode

    def dump(self, tail=60):
        lines = self.output().splitlines()
        print(f"----- {self.name} output (last {tail} lines) -----", file=sys.stderr)
        for line in lines[-tail:]:
            print(f"  {line}", file=sys.stderr)


def pipeline_route(name, frontend_port, backend_port, **queue):
    """A PULL frontend bound on loopback -> PUSH backend connecting to backend_port."""
    route = {
        "name": name,
        "frontend": {"type": "pull", "bind": [f"tcp://127.0.0.1:{frontend_port}"], "connect": []},
        "backend": {"type": "push", "bind": [], "connect": [f"tcp://127.0.0.1:{backend_port}"]},
        "flush": {"interval_ms": 1000},
    }
    if queue:
        route["queue"] = queue
    return route


class Tidepool:
    """The real binary with a JSON config on loopback; ready once /readyz answers 200."""

    def __init__(self, binary, workdir, routes, extra_args=()):
        self.http_port = free_port()
        self.base = f"http://127.0.0.1:{self.http_port}"
        self.config = {
            "http": {"listen": f"127.0.0.1:{self.http_port}"},
            "log": {"level": "info", "format": "text"},
            "shutdown": {"drain_timeout_ms": 2000},
            "routes": routes,
        }
        self.config_path = os.path.join(workdir, "tidepool.json")
        with open(self.config_path, "w") as f:
            json.dump(self.config, f, indent=2)
        self.proc = Proc("tidepool", [binary, "--config", self.config_path, *extra_args], workdir)

    def wait_ready(self, timeout=20.0):
        def ready():
            if not self.proc.alive():
                raise RuntimeError(f"tidepool exited with {self.proc.p.returncode}:\n"
                                   f"{self.proc.output()}")
            return http_get(self.base + "/readyz", timeout=2)[0] == 200
        try:
            wait_until(ready, timeout, "tidepool /readyz == 200")
        except RuntimeError as e:
            raise SystemExit(f"FAIL: {e}") from None

    def metrics(self):
        status, body = http_get(self.base + "/metrics")
        if status != 200:
            raise AssertionError(f"GET /metrics -> {status}")
        return body

    def stop(self):
        return self.proc.stop()


# --- Prometheus text format ---

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)(\s+\S+)?$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Returns (types, samples): {family: type} and [(name, {label: value}, float)]."""
    types, samples = {}, []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split()
            if len(parts) >= 4 and parts[1] == "TYPE":
                types[parts[2]] = parts[3]
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise ValueError(f"unparsable metrics line: {line!r}")
        labels = dict(_LABEL.findall(m.group(2) or ""))
        samples.append((m.group(1), labels, float(m.group(3))))
    return types, samples


def exported_names(text):
    """Every series name a query may use: sample names, plus what each TYPE line implies
    (a histogram `x` is queried as x_bucket / x_sum / x_count, even before it has samples)."""
    types, samples = parse_metrics(text)
    names = {name for name, _, _ in samples}
    for family, kind in types.items():
        if kind in ("histogram", "summary"):
            names.update({family + "_sum", family + "_count"})
            if kind == "histogram":
                names.add(family + "_bucket")
        else:
            names.add(family)
    return names


def sample_value(text, name, **labels):
    """Sum of the samples of `name` whose labels include `labels` (None when none match)."""
    _, samples = parse_metrics(text)
    vals = [v for n, ls, v in samples
            if n == name and all(ls.get(k) == val for k, val in labels.items())]
    return sum(vals) if vals else None


# --- PromQL in the shipped dashboard and rules ---

def dashboard_exprs(path):
    """Every `expr` string anywhere in a Grafana dashboard JSON (panels, rows, targets)."""
    with open(path) as f:
        doc = json.load(f)
    found = []

    def walk(node, where):
        if isinstance(node, dict):
            title = node.get("title", where)
            for key, val in node.items():
                if key == "expr" and isinstance(val, str):
                    found.append((f"dashboard panel '{title}'", val))
                else:
                    walk(val, title)
        elif isinstance(node, list):
            for item in node:
                walk(item, where)

    walk(doc, "dashboard")
    return found


def rule_exprs(path):
    """(alert name, expr) for every rule of a Prometheus rules file.

    Stdlib only, so this reads the YAML subset rule files use: `expr: <one line>` or a
    block scalar `expr: |` whose lines are indented deeper than the `expr` key.
    """
    with open(path) as f:
        lines = f.read().splitlines()
    found, name, i = [], None, 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^\s*-?\s*(alert|record):\s*(\S+)", line)
        if m:
            name = m.group(2)
        m = re.match(r"^(\s*)expr:\s*(.*)$", line)
        if m:
            indent, rest = len(m.group(1)), m.group(2).strip()
            if rest in ("|", "|-", ">", ">-", "|+"):
                body = []
                i += 1
                while i < len(lines) and (not lines[i].strip() or
                                          len(lines[i]) - len(lines[i].lstrip()) > indent):
                    body.append(lines[i].strip())
                    i += 1
                found.append((f"rule {name}", "\n".join(body).strip()))
                continue
            found.append((f"rule {name}", rest.strip("'\"")))
        i += 1
    return found


def strip_promql_comments(expr):
    return "\n".join(line.split("#", 1)[0] for line in expr.splitlines())


def tidepool_names_in(expr):
    """Series names tidepool exports that an expression selects: tidepool_* and the process_*
    collector's (label names never start with either, no PromQL function does)."""
    expr = strip_promql_comments(expr)
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values are not metric names
    return set(re.findall(r"\b(?:tidepool|process)_[a-zA-Z0-9_:]*", expr))


def series_names_in(expr):
    """tidepool_* and process_* (the standard process metrics) series names an expression
    selects."""
    expr = strip_promql_comments(expr)
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    return set(re.findall(r"\b(?:tidepool|process)_[a-zA-Z0-9_:]*", expr))


def grafana_to_promql(expr):
    """Replaces Grafana's template variables so a plain Prometheus can evaluate expr."""
    for var, val in (("$__rate_interval", "1m"), ("$__interval", "15s"), ("$__range", "1h"),
                     ("$job", ".*"), ("$instance", ".*"), ("$route", ".*")):
        expr = expr.replace(var, val)
    return expr


def tmpdir(prefix):
    return tempfile.mkdtemp(prefix=prefix)
