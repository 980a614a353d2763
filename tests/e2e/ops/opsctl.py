#!/usr/bin/python3
"""Host-side peers and probes for container_test.sh (each bounded by a deadline).

  opsctl.py hold-ports N                          print N free loopback ports, and keep them
                                                  reserved (test_ports.py) until the process
                                                  that started this one exits
  opsctl.py wait-http URL STATUS TIMEOUT          until GET URL answers STATUS
  opsctl.py push ENDPOINT N PREFIX                PUSH N messages PREFIX-00000...
  opsctl.py pull ENDPOINT N PREFIX TIMEOUT        bind PULL, expect exactly those N, in order
  opsctl.py wait-metric URL NAME LABEL=V.. OP VALUE TIMEOUT
                                                  until the /metrics sample compares (== or >=)
  opsctl.py metric URL NAME LABEL=V..             print a sample's value (sum over matches)
Exit status 0 on success, 1 with a message on stderr otherwise.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import opslib  # noqa: E402


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def labels_of(args):
    return dict(a.split("=", 1) for a in args)


def cmd_push(endpoint, n, prefix):
    import zmq
    ctx = zmq.Context()
    s = ctx.socket(zmq.PUSH)
    s.setsockopt(zmq.SNDTIMEO, 10000)
    s.setsockopt(zmq.LINGER, 10000)  # bounded: close() waits for delivery to tidepool
    s.connect(endpoint)
    try:
        for i in range(int(n)):
            s.send(f"{prefix}-{i:05d}".encode())
    except zmq.Again:
        fail(f"PUSH to {endpoint} blocked for 10s after {i} messages")
    finally:
        s.close()
        ctx.term()
    opslib.log(f"pushed {n} messages to {endpoint}")


def cmd_pull(endpoint, n, prefix, timeout):
    import zmq
    n = int(n)
    ctx = zmq.Context()
    s = ctx.socket(zmq.PULL)
    s.setsockopt(zmq.LINGER, 0)
    s.bind(endpoint)
    got = []
    deadline = time.monotonic() + float(timeout)
    while len(got) < n and time.monotonic() < deadline:
        if s.poll(200):
            got.append(s.recv().decode())
    # Nothing beyond the N expected (no duplicates), checked for a short moment.
    extra = s.recv().decode() if s.poll(300) else None
    s.close()
    ctx.term()
    expected = [f"{prefix}-{i:05d}" for i in range(n)]
    if got != expected:
        fail(f"PULL on {endpoint} got {len(got)} of {n} expected messages in order "
             f"(first got: {got[:3]})")
    if extra is not None:
        fail(f"PULL on {endpoint} got an unexpected extra message {extra!r}")
    opslib.log(f"received {n} messages in order on {endpoint}")


def cmd_wait_metric(url, name, *rest):
    *label_args, op, value, timeout = rest
    labels, want = labels_of(label_args), float(value)

    def check():
        status, body = opslib.http_get(url, timeout=3)
        if status != 200:
            return None
        v = opslib.sample_value(body, name, **labels)
        return v is not None and (v == want if op == "==" else v >= want)
    try:
        opslib.wait_until(check, float(timeout), f"{name}{labels} {op} {want:g} at {url}")
    except TimeoutError as e:
        fail(str(e))
    opslib.log(f"{name}{labels} {op} {want:g}")


def main(argv):
    if len(argv) < 2:
        fail(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "hold-ports":
        # A shell cannot hold the ports' locks itself: this process holds them for it, run
        # beside it (a coprocess), until it exits, so no test beside it is given them meanwhile.
        parent = os.getppid()
        print(" ".join(str(p) for p in opslib.free_ports(int(args[0]))), flush=True)
        while os.getppid() == parent:
            time.sleep(0.5)
    elif cmd == "wait-http":
        url, status, timeout = args
        try:
            opslib.wait_until(lambda: opslib.http_get(url, timeout=3)[0] == int(status),
                              float(timeout), f"GET {url} -> {status}")
        except TimeoutError as e:
            fail(str(e))
    elif cmd == "push":
        cmd_push(*args)
    elif cmd == "pull":
        cmd_pull(*args)
    elif cmd == "wait-metric":
        cmd_wait_metric(*args)
    elif cmd == "metric":
        status, body = opslib.http_get(args[0])
        if status != 200:
            fail(f"GET {args[0]} -> {status}")
        v = opslib.sample_value(body, args[1], **labels_of(args[2:]))
        print("absent" if v is None else f"{v:g}")
    else:
        fail(f"unknown command {cmd}\n{__doc__}")


if __name__ == "__main__":
    main(sys.argv)
