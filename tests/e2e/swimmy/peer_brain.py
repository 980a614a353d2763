#!/usr/bin/python3
"""Stand-in for Swimmy's brain as the result reader.

PULL bound on the result port (libzmq defaults); each main-loop pass reads without
blocking, up to 200 messages, then does its other work (a short pause). Reports every
result as a JSON line on stdout.
"""

import argparse
import json
import sys
import time

import zmq

import swimmy_wire as wire


def emit(**ev):
    sys.stdout.write(json.dumps(ev) + "\n")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", required=True)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--loop-ms", type=float, default=10)
    args = ap.parse_args()

    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.bind(args.bind)
    emit(ev="ready", t=time.monotonic())
    while True:
        for _ in range(args.batch):
            try:
                body = pull.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            rid, ok = wire.read_result(body)
            emit(ev="result", id=rid, t=time.monotonic(), n=len(body), well_formed=ok,
                 json=body.startswith(b"{"))
        time.sleep(args.loop_ms / 1000.0)


if __name__ == "__main__":
    main()
