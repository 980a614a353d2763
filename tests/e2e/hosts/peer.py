#!/usr/bin/python3
"""The workers and clients of the multi-host suite (python3-zmq, one process per role, run in
a host's network namespace). Each prints JSON lines on stdout; the driver reads them.

  peer.py worker NAME TYPE ENDPOINT [--delay-ms D] [--heartbeat-ms H]
      TYPE router: a request-reply worker; echoes the envelope up to the empty frame, then
      b"NAME:" + body, to the connection the request came from. (TYPE dealer does the same,
      but a DEALER sends each reply to its next peer in turn, right only with one peer.)
      TYPE pull: a pipeline worker; reports the ids it received ({"ev": "got", "ids": [...]},
      batched, flushed at least every 50 ms). ENDPOINT bind:ADDR
      or connect:ADDR. --delay-ms: each reply waits that long (a slow host).
  peer.py client NAME ENDPOINT [--window W] [--rate R]
      A DEALER with REQ-style envelopes, W requests outstanding at most, at most R per second.
      Until "stop" on stdin, then waits (up to 30 s) for what is outstanding and prints a
      summary: sent, answered, duplicates, unanswered ids, replies per worker, latencies.
  peer.py push NAME ENDPOINT [--rate R]
      A PUSH client sending ids NAME:0, NAME:1, ... at R per second until "stop", then prints
      {"ev": "sent", "count": N}.
Every peer prints {"ev": "ready"} once its socket is set up and progress lines while it runs.
"""

import argparse
import json
import select
import sys
import time

import zmq


def emit(**event):
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def attach(sock, endpoint):
    how, addr = endpoint.split(":", 1)
    if how == "bind":
        sock.bind(addr)
    else:
        sock.connect(addr)


def stop_requested():
    r, _, _ = select.select([sys.stdin], [], [], 0)
    return bool(r) and sys.stdin.readline().strip() in ("stop", "")


def worker(args):
    ctx = zmq.Context()
    kind = {"router": zmq.ROUTER, "dealer": zmq.DEALER, "pull": zmq.PULL}[args.type]
    sock = ctx.socket(kind)
    sock.linger = 0
    if args.type != "pull":
        sock.sndhwm = 0  # never drop or block a reply on our side
        sock.rcvhwm = 0
    else:
        sock.rcvhwm = args.rcvhwm
    if args.heartbeat_ms:
        sock.heartbeat_ivl = args.heartbeat_ms
        sock.heartbeat_timeout = 3 * args.heartbeat_ms
    attach(sock, args.endpoint)
    emit(ev="ready")
    name = args.name.encode()
    delay = args.delay_ms / 1000.0
    handled = 0
    ids = []
    last_report = last_progress = time.monotonic()
    while True:
        if sock.poll(50):
            frames = sock.recv_multipart()
            handled += 1
            if args.type == "pull":
                ids.append(frames[-1].decode())
            else:
                try:
                    body = frames.index(b"") + 1
                except ValueError:
                    continue
                if body >= len(frames):
                    continue
                if delay:
                    time.sleep(delay)
                sock.send_multipart(frames[:body] + [name + b":" + frames[body]] +
                                    frames[body + 1:])
        now = time.monotonic()
        if ids and (now - last_report >= 0.05 or len(ids) >= 500):
            emit(ev="got", ids=ids)
            ids = []
            last_report = now
        if now - last_progress >= 0.25:
            emit(ev="progress", handled=handled)
            last_progress = now


class Pacer:
    """At most rate per second, in steps of 10 ms."""

    def __init__(self, rate):
        self.rate = rate
        self.start = time.monotonic()
        self.done = 0

    def allowed(self):
        if not self.rate:
            return 1 << 30
        return int((time.monotonic() - self.start) * self.rate) - self.done


def client(args):
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.sndhwm = 0
    sock.rcvhwm = 0
    attach(sock, args.endpoint)
    emit(ev="ready")
    pacer = Pacer(args.rate)
    outstanding = {}  # seq -> sent time
    answered = {}  # seq -> (worker, latency s)
    duplicates = 0
    stray = 0
    seq = 0
    stopping_since = None
    last_progress = time.monotonic()
    while True:
        now = time.monotonic()
        if stopping_since is None:
            if stop_requested():
                stopping_since = now
            else:
                room = min(args.window - len(outstanding), pacer.allowed())
                for _ in range(max(0, room)):
                    sock.send_multipart([b"", f"{args.name}:{seq}".encode()])
                    outstanding[seq] = time.monotonic()
                    seq += 1
                    pacer.done += 1
        elif not outstanding or now - stopping_since > args.drain_s:
            break
        if sock.poll(5):
            while True:
                try:
                    frames = sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                t = time.monotonic()
                try:
                    who, body = frames[-1].decode().split(":", 1)
                    name, n = body.rsplit(":", 1)
                    n = int(n)
                except ValueError:
                    stray += 1
                    continue
                if name != args.name:
                    stray += 1
                elif n in answered:
                    duplicates += 1
                elif n in outstanding:
                    answered[n] = (who, t - outstanding.pop(n))
                else:
                    stray += 1
        if now - last_progress >= 0.25:
            emit(ev="progress", sent=seq, answered=len(answered), outstanding=len(outstanding))
            last_progress = now
    per_worker = {}
    latencies = {}
    for who, lat in answered.values():
        per_worker[who] = per_worker.get(who, 0) + 1
        latencies.setdefault(who, []).append(lat)

    def pct(values, q):
        values = sorted(values)
        return values[min(len(values) - 1, int(q * len(values)))] if values else None

    emit(ev="summary", sent=seq, answered=len(answered), duplicates=duplicates, stray=stray,
         unanswered=sorted(outstanding), per_worker=per_worker,
         p50={w: pct(v, 0.5) for w, v in latencies.items()},
         max_latency=max((lat for _, lat in answered.values()), default=0.0),
         slow=sum(1 for _, lat in answered.values() if lat > 1.0))


def push(args):
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.linger = 5000
    attach(sock, args.endpoint)
    emit(ev="ready")
    pacer = Pacer(args.rate)
    seq = 0
    last_progress = time.monotonic()
    pad = b"x" * args.size
    while not stop_requested():
        for _ in range(max(0, min(200, pacer.allowed()))):
            sock.send_multipart([pad, f"{args.name}:{seq}".encode()])
            seq += 1
            pacer.done += 1
        time.sleep(0.005)
        if time.monotonic() - last_progress >= 0.25:
            emit(ev="progress", sent=seq)
            last_progress = time.monotonic()
    emit(ev="sent", count=seq)
    sock.close()
    ctx.term()


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="role", required=True)
    w = sub.add_parser("worker")
    w.add_argument("name")
    w.add_argument("type", choices=("router", "dealer", "pull"))
    w.add_argument("endpoint")
    w.add_argument("--delay-ms", type=float, default=0.0)
    w.add_argument("--heartbeat-ms", type=int, default=0)
    w.add_argument("--rcvhwm", type=int, default=1000)
    c = sub.add_parser("client")
    c.add_argument("name")
    c.add_argument("endpoint")
    c.add_argument("--window", type=int, default=20)
    c.add_argument("--rate", type=float, default=0)
    c.add_argument("--drain-s", type=float, default=30.0)
    s = sub.add_parser("push")
    s.add_argument("name")
    s.add_argument("endpoint")
    s.add_argument("--rate", type=float, default=2000)
    s.add_argument("--size", type=int, default=100)
    args = p.parse_args()
    {"worker": worker, "client": client, "push": push}[args.role](args)


if __name__ == "__main__":
    main()
