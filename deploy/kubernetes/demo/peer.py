#!/usr/bin/env python3
"""Demo peers for the Kubernetes kit: a client that pushes numbered messages to its
tidepool sidecar on localhost, and a worker that pulls them and counts what arrived.

  peer.py client   PUSH connect $TIDEPOOL_FRONTEND (tcp://127.0.0.1:5580), $RATE msgs/s
  peer.py worker   PULL bind $WORKER_BIND (tcp://*:5590)

Both print one status line per change (at most 5 a second) and a final one on SIGTERM, so
`kubectl logs` (or the kit's test) can see what was sent and what arrived. Placeholders for
your own client and worker: only pyzmq, no tidepool library.
"""

import os
import signal
import sys
import time

import zmq

stopping = False


def on_term(_signum, _frame):
    global stopping
    stopping = True


def client():
    endpoint = os.environ.get("TIDEPOOL_FRONTEND", "tcp://127.0.0.1:5580")
    rate = float(os.environ.get("RATE", "10"))
    # On SIGTERM the client stops sending, then waits up to LINGER_MS for libzmq to hand
    # what it already sent to the sidecar (which outlives it: Kubernetes stops sidecars last).
    linger_ms = int(os.environ.get("LINGER_MS", "10000"))
    push = zmq.Context.instance().socket(zmq.PUSH)
    push.linger = linger_ms
    push.connect(endpoint)
    sent, started, last_print = 0, time.monotonic(), 0.0
    print(f"client: pushing to {endpoint} at {rate:g}/s", flush=True)
    while not stopping:
        due = started + sent / rate
        now = time.monotonic()
        if now < due:
            time.sleep(min(due - now, 0.2))
            continue
        push.send(b"demo-%d" % sent)
        sent += 1
        if now - last_print >= 0.2:
            print(f"client sent={sent}", flush=True)
            last_print = now
    push.close()  # blocks for at most LINGER_MS until every sent message left
    print(f"client stopped sent={sent}", flush=True)


def worker():
    endpoint = os.environ.get("WORKER_BIND", "tcp://*:5590")
    pull = zmq.Context.instance().socket(zmq.PULL)
    pull.bind(endpoint)
    seen, received, duplicates, last_print, printed = set(), 0, 0, 0.0, None
    print(f"worker: pulling on {endpoint}", flush=True)
    while not stopping:
        if pull.poll(200):
            while True:
                try:
                    body = pull.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                received += 1
                if body in seen:
                    duplicates += 1
                seen.add(body)
        now = time.monotonic()
        state = (received, duplicates)
        if state != printed and now - last_print >= 0.2:
            print(f"worker received={received} unique={len(seen)} duplicates={duplicates}",
                  flush=True)
            printed, last_print = state, now
    print(f"worker stopped received={received} unique={len(seen)} duplicates={duplicates}",
          flush=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    role = sys.argv[1] if len(sys.argv) > 1 else ""
    if role == "client":
        client()
    elif role == "worker":
        worker()
    else:
        sys.exit("usage: peer.py client|worker")
