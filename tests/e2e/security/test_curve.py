#!/usr/bin/python3
"""End-to-end: CURVE security through the real tidepool binary, against pyzmq peers.

The peers are Debian's python3-zmq: their CURVE, their certificate files
(zmq.auth.create_certificates / load_certificate) and their ZAP authenticator, so the test
also proves that tidepool's key files and pyzmq's are interchangeable.

Scenarios:
  frontend  allow-listed client passes; an unlisted key, a wrong server key, a NULL peer and
            raw bytes are refused and counted by reason; SIGHUP admits a newly listed key;
            beside it, a NULL route shows what an unauthenticated peer can do
  backend   tidepool as CURVE client of a worker that allow-lists its key; a tidepool whose
            key the worker refuses counts it, logs it, and keeps every request queued
  config    key-file mistakes are config errors (exit 2) naming the key; keygen never
            overwrites and writes the secret with mode 0600

Usage: test_curve.py --tidepool BIN --source SRC [--scenario NAME ...]
"""

import argparse
import collections
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "swimmy"))
import harness as h  # noqa: E402
from harness import check, log, wait_until  # noqa: E402

import zmq  # noqa: E402
import zmq.auth  # noqa: E402
from zmq.auth.thread import ThreadAuthenticator  # noqa: E402

SCENARIOS = collections.OrderedDict()
REQUESTS = 100


def scenario(fn):
    SCENARIOS[fn.__name__.replace("scenario_", "")] = fn
    return fn


class EchoWorker:
    """A DEALER bound on `port` that answers every request "<body>:done" on its own thread.
    `curve_secret`: serve CURVE with that secret key (and `auth_dir`: only let in the keys
    of the certificates there, through pyzmq's own ZAP authenticator)."""

    def __init__(self, port, curve_secret=None, auth_dir=None):
        self.ctx = zmq.Context()
        self.auth = None
        if auth_dir:
            self.auth = ThreadAuthenticator(self.ctx)
            self.auth.start()
            self.auth.configure_curve(domain="*", location=auth_dir)
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.linger = 0
        if curve_secret:
            self.sock.curve_server = True
            self.sock.curve_secretkey = curve_secret
        self.sock.bind(f"tcp://127.0.0.1:{port}")
        self.answered = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        while not self._stop.is_set():
            if not poller.poll(50):
                continue
            frames = self.sock.recv_multipart()
            frames[-1] = frames[-1] + b":done"
            self.sock.send_multipart(frames)
            self.answered += 1

    def close(self):
        self._stop.set()
        self._t.join(timeout=5)
        if self.auth:
            self.auth.stop()
        self.ctx.destroy(linger=0)


def client(ctx, port, keys=None, server_key=None):
    """A DEALER client; `keys` (public, secret) and `server_key` make it a CURVE client."""
    s = ctx.socket(zmq.DEALER)
    s.linger = 0
    if keys:
        s.curve_publickey, s.curve_secretkey = keys
        s.curve_serverkey = server_key
    s.connect(f"tcp://127.0.0.1:{port}")
    return s


def round_trips(sock, count, tag, timeout=10):
    """Sends `count` requests (REQ-style envelope) and returns the replies' bodies."""
    for i in range(count):
        sock.send_multipart([b"", f"{tag}-{i}".encode()])
    replies = []
    deadline = time.monotonic() + timeout
    while len(replies) < count and time.monotonic() < deadline:
        if sock.poll(100):
            replies.append(sock.recv_multipart()[-1].decode())
    return replies


def keygen(binary, base):
    r = subprocess.run([binary, "keygen", base], capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, f"keygen {base}: exit {r.returncode}: {r.stderr}")
    public, secret = zmq.auth.load_certificate(base + ".key_secret")
    check(r.stdout.strip().encode() == public, "keygen prints the public key it wrote")
    return public, secret


def failures(tp, route, side="frontend"):
    m = tp.metrics()
    return {reason: m.val(f"tidepool_{side}_handshake_failures_total", route=route, reason=reason)
            for reason in ("unauthorized", "mechanism", "cryptographic", "protocol",
                           "incomplete")}


def received(tp, route):
    return tp.metrics().val("tidepool_received_messages_total", route=route)


def wait_failure(tp, route, reason, side="frontend", timeout=15):
    try:
        wait_until(lambda: failures(tp, route, side)[reason] >= 1, timeout,
                   f"{side} handshake failure '{reason}' counted on route {route}")
    except h.Failure as e:
        raise h.Failure(f"{e}; counted: {failures(tp, route, side)}") from None


def wait_log(tp, text, timeout=10):
    def found():
        with open(tp.log_path, encoding="utf-8", errors="replace") as f:
            return text in f.read()
    wait_until(found, timeout, f"log line containing {text!r}")


def request_reply_route(name, front, back, frontend_curve=None, backend_curve=None):
    route = {"name": name,
             "frontend": {"type": "router", "bind": [f"tcp://127.0.0.1:{front}"]},
             "backend": {"type": "dealer", "connect": [f"tcp://127.0.0.1:{back}"]}}
    if frontend_curve:
        route["frontend"]["curve"] = frontend_curve
    if backend_curve:
        route["backend"]["curve"] = backend_curve
    return route


def start(args, work, routes, name="tidepool"):
    http_port = h.free_port()
    cfg = {"http": {"listen": f"127.0.0.1:{http_port}"}, "routes": routes}
    tp = h.Tidepool(args.tidepool, cfg, work, http_port, name=name)
    tp.wait_ready()
    return tp


@scenario
def scenario_frontend(args, work):
    """CURVE frontend with an allow-list, beside a NULL route"""
    keys = os.path.join(work, "keys")
    allowed = os.path.join(work, "clients")
    os.makedirs(keys)
    os.makedirs(allowed)
    server_public, _ = keygen(args.tidepool, os.path.join(keys, "server"))
    alice = keygen(args.tidepool, os.path.join(keys, "alice"))
    shutil.copy(os.path.join(keys, "alice.key"), allowed)
    # Bob's certificate comes from pyzmq, not from tidepool.
    bob_public_file, bob_secret_file = zmq.auth.create_certificates(keys, "bob")
    bob = zmq.auth.load_certificate(bob_secret_file)

    ports = {k: h.free_port() for k in ("curve_front", "curve_back", "null_front", "null_back")}
    tp = start(args, work, [
        request_reply_route("secure", ports["curve_front"], ports["curve_back"],
                            frontend_curve={
                                "secret_key_file": os.path.join(keys, "server.key_secret"),
                                "authorized_keys": allowed}),
        request_reply_route("open", ports["null_front"], ports["null_back"])])
    workers = [EchoWorker(ports["curve_back"]), EchoWorker(ports["null_back"])]
    ctx = zmq.Context()
    try:
        # 1. The listed key passes.
        a = client(ctx, ports["curve_front"], alice, server_public)
        replies = round_trips(a, REQUESTS, "alice")
        check(sorted(replies) == sorted(f"alice-{i}:done" for i in range(REQUESTS)),
              f"alice: {len(replies)}/{REQUESTS} answered")
        base = received(tp, "secure")
        check(base == REQUESTS, f"received {base}, expected {REQUESTS}")

        # 2. An unlisted key, with the right server key: refused by the ZAP handler.
        b = client(ctx, ports["curve_front"], bob, server_public)
        b.send_multipart([b"", b"bob-before"])
        wait_failure(tp, "secure", "unauthorized")
        wait_log(tp, "client refused: CURVE key not in authorized_keys")
        wait_log(tp, bob[0].decode())
        b.close()

        # 3. A listed key but the wrong server key: the boxes do not open.
        w = client(ctx, ports["curve_front"], alice, bob[0])
        w.send_multipart([b"", b"wrong-server-key"])
        wait_failure(tp, "secure", "cryptographic")
        w.close()

        # 4. A NULL-security peer on the CURVE port. Both ends see the mechanisms differ; when
        # the peer hangs up before tidepool has read its whole greeting, libzmq reports no
        # detail and the refusal counts as "incomplete" instead of "mechanism".
        before = failures(tp, "secure")
        n = client(ctx, ports["curve_front"])
        n.send_multipart([b"", b"null-peer"])
        wait_until(lambda: sum(failures(tp, "secure")[r] - before[r]
                               for r in ("mechanism", "incomplete")) >= 1, 15,
                   "the NULL peer counted as a mechanism (or incomplete) handshake failure")
        n.close()

        # 5. Raw bytes: no handshake at all.
        before = sum(failures(tp, "secure").values())
        with socket.create_connection(("127.0.0.1", ports["curve_front"])) as raw:
            raw.sendall(b"\x00\x05hello" * 100)
        wait_until(lambda: sum(failures(tp, "secure").values()) > before, 15,
                   "raw bytes counted as a failed handshake")

        # None of the refused peers got a message in.
        check(received(tp, "secure") == base,
              f"received on the CURVE route grew to {received(tp, 'secure')} (expected {base})")
        f = failures(tp, "secure")
        log(f"  secure route refusals by reason: {f}")

        # Beside it, a NULL port: anyone who reaches it is served, no key asked.
        anyone = client(ctx, ports["null_front"])
        check(round_trips(anyone, 1, "anyone") == ["anyone-0:done"],
              "a NULL route serves an unauthenticated peer")
        check(sum(failures(tp, "open").values()) == 0, "the NULL route refused nobody")

        # 6. SIGHUP re-reads the list: Bob's pyzmq certificate now lets him in.
        shutil.copy(bob_public_file, allowed)
        tp.p.send_signal(1)
        wait_log(tp, "authorized keys reloaded")
        b2 = client(ctx, ports["curve_front"], bob, server_public)
        replies = round_trips(b2, 10, "bob")
        check(sorted(replies) == sorted(f"bob-{i}:done" for i in range(10)),
              f"bob after SIGHUP: {len(replies)}/10 answered")
        log(f"  alice {REQUESTS}/{REQUESTS} answered; bob refused, then 10/10 after SIGHUP")
        for s in (a, anyone, b2):
            s.close()
    finally:
        ctx.destroy(linger=0)  # closes what a failed check left open
        for w in workers:
            w.close()
        rc = tp.terminate()
    check(rc == 0, f"tidepool exit status {rc}")


@scenario
def scenario_backend(args, work):
    """CURVE backend: the worker allow-lists tidepool's key"""
    keys = os.path.join(work, "keys")
    worker_allows = os.path.join(work, "worker-allows")
    os.makedirs(keys)
    os.makedirs(worker_allows)
    keygen(args.tidepool, os.path.join(keys, "tidepool"))
    keygen(args.tidepool, os.path.join(keys, "stranger"))
    _, worker_secret_file = zmq.auth.create_certificates(keys, "worker")
    _, worker_secret = zmq.auth.load_certificate(worker_secret_file)
    shutil.copy(os.path.join(keys, "tidepool.key"), worker_allows)

    back = h.free_port()
    worker = EchoWorker(back, curve_secret=worker_secret, auth_dir=worker_allows)
    ctx = zmq.Context()
    tps = []
    try:
        def backend_curve(name):
            return {"secret_key_file": os.path.join(keys, f"{name}.key_secret"),
                    "server_public_key_file": os.path.join(keys, "worker.key")}

        front = h.free_port()
        tp = start(args, work, [request_reply_route("jobs", front, back,
                                                    backend_curve=backend_curve("tidepool"))])
        tps.append(tp)
        c = client(ctx, front)
        replies = round_trips(c, REQUESTS, "job")
        check(len(replies) == REQUESTS, f"{len(replies)}/{REQUESTS} answered over CURVE")
        c.close()

        # A tidepool whose key the worker does not list: refused, counted, logged; the
        # requests wait in the queue instead of being lost.
        front2 = h.free_port()
        tp2 = start(args, work, [request_reply_route("jobs", front2, back,
                                                     backend_curve=backend_curve("stranger"))],
                    name="stranger")
        tps.append(tp2)
        c2 = client(ctx, front2)
        for i in range(10):
            c2.send_multipart([b"", f"stranger-{i}".encode()])
        wait_failure(tp2, "jobs", "unauthorized", side="backend")
        wait_log(tp2, "backend handshake refused")
        wait_until(lambda: tp2.metrics().val("tidepool_queue_messages", route="jobs") == 10, 10,
                   "the stranger's 10 requests queued")
        m = tp2.metrics()
        check(m.val("tidepool_backend_up", route="jobs") == 0, "backend_up 0 while refused")
        check(worker.answered == REQUESTS, f"the worker answered {worker.answered}")
        log(f"  {REQUESTS}/{REQUESTS} answered with tidepool's key; with an unlisted key: "
            f"{failures(tp2, 'jobs', 'backend')['unauthorized']:.0f} refusals counted, "
            "10/10 requests still queued")
        c2.close()
    finally:
        ctx.destroy(linger=0)  # closes what a failed check left open
        worker.close()
        codes = [tp.terminate() for tp in tps]
    check(all(rc == 0 for rc in codes), f"tidepool exit statuses {codes}")


@scenario
def scenario_config(args, work):
    """key-file mistakes are config errors; keygen is careful with secrets"""
    keys = os.path.join(work, "keys")
    os.makedirs(keys)
    keygen(args.tidepool, os.path.join(keys, "server"))
    keygen(args.tidepool, os.path.join(keys, "other"))
    mode = stat.S_IMODE(os.stat(os.path.join(keys, "server.key_secret")).st_mode)
    check(mode == 0o600, f"secret certificate mode {mode:o}, expected 600")
    r = subprocess.run([args.tidepool, "keygen", os.path.join(keys, "server")],
                       capture_output=True, text=True, timeout=30)
    check(r.returncode != 0 and "never overwrites" in r.stderr,
          f"keygen over existing keys: exit {r.returncode}, {r.stderr!r}")
    check(zmq.auth.load_certificate(os.path.join(keys, "server.key_secret"))[1] is not None,
          "the existing secret is intact")

    # A secret certificate whose public key belongs to another pair.
    mixed = os.path.join(keys, "mixed.key_secret")
    with open(os.path.join(keys, "server.key_secret")) as f:
        text = f.read()
    other_public, _ = zmq.auth.load_certificate(os.path.join(keys, "other.key"))
    server_public, _ = zmq.auth.load_certificate(os.path.join(keys, "server.key"))
    with open(mixed, "w") as f:
        f.write(text.replace(server_public.decode(), other_public.decode()))
    with open(os.path.join(keys, "list.txt"), "w") as f:
        f.write("# one key per line\n" + server_public.decode() + " box-1\nnot-a-key\n")

    cases = [
        ({"secret_key_file": os.path.join(keys, "missing.key_secret")},
         "routes[0].frontend.curve.secret_key_file", "cannot read"),
        ({"secret_key_file": os.path.join(keys, "server.key")},
         "routes[0].frontend.curve.secret_key_file", "has no secret-key"),
        ({"secret_key_file": mixed},
         "routes[0].frontend.curve.secret_key_file", "does not belong"),
        ({"secret_key_file": os.path.join(keys, "server.key_secret"),
          "authorized_keys": os.path.join(keys, "list.txt")},
         "routes[0].frontend.curve.authorized_keys", "line 3"),
        ({"secret_key_file": os.path.join(keys, "server.key_secret"), "server_public_key_file": "x"},
         "routes[0].frontend.curve.server_public_key_file", "unknown key"),
    ]
    for curve, path, problem in cases:
        cfg = {"routes": [request_reply_route("r", h.free_port(), h.free_port(),
                                              frontend_curve=curve)]}
        cfg_path = os.path.join(work, "bad.json")
        with open(cfg_path, "w") as f:
            json.dump(cfg, f)
        for argv in ([args.tidepool, "check-config", cfg_path],
                     [args.tidepool, "--config", cfg_path]):
            r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            check(r.returncode == 2 and path in r.stderr and problem in r.stderr,
                  f"{argv[1]} with {curve}: exit {r.returncode}, stderr {r.stderr!r}; "
                  f"expected exit 2 naming {path}: {problem}")
    log(f"  {len(cases)} key-file mistakes: exit 2 with the key's path, in check-config and run")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tidepool", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--scenario", action="append", choices=list(SCENARIOS) + ["all"])
    ap.add_argument("--keep", action="store_true", help="keep work dirs")
    args = ap.parse_args()
    names = list(SCENARIOS) if not args.scenario or "all" in args.scenario else args.scenario
    failed = []
    for name in names:
        t = time.monotonic()
        work = tempfile.mkdtemp(prefix=f"tidepool-curve-{name}-")
        log(f"=== {name}: {SCENARIOS[name].__doc__.strip().splitlines()[0]}")
        try:
            SCENARIOS[name](args, work)
            log(f"--- {name}: PASS ({time.monotonic() - t:.1f} s)")
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
        except Exception as e:  # noqa: BLE001 - report every scenario
            failed.append(name)
            if not isinstance(e, h.Failure):
                traceback.print_exc()
            log(f"--- {name}: FAIL ({time.monotonic() - t:.1f} s): {e} (work dir {work})")
            for path in sorted(os.listdir(work)):
                if path.endswith(".log"):
                    with open(os.path.join(work, path), errors="replace") as f:
                        log(f"  {path}:\n" + "".join(f.readlines()[-30:]))
        finally:
            h.cleanup()
    log(f"{len(names) - len(failed)}/{len(names)} scenarios passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
