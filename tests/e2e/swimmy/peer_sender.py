#!/usr/bin/python3
"""Stand-in for Swimmy's brain or school as a request sender.

Like Swimmy (pzmq, no socket options): one PUSH socket with libzmq defaults (SNDHWM 1000,
IMMEDIATE off, LINGER infinite) connected to the requests port, blocking sends of one-frame,
one-line S-expression requests. Reports every send as a JSON line on stdout.
"""

import argparse
import json
import random
import sys
import time

import zmq

import swimmy_wire as wire


def emit(**ev):
    sys.stdout.write(json.dumps(ev) + "\n")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--name", default="school")
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--rate", type=float, default=0, help="messages/s; 0 = back to back")
    ap.add_argument("--oos-every", type=int, default=0, help="every Nth request is -OOS")
    ap.add_argument("--missing-at", type=int, default=-1, help="index sent without request_id")
    ap.add_argument("--big-at", type=int, default=-1, help="index sent with inline candles")
    ap.add_argument("--big-candles", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quiet", action="store_true", help="no per-message lines")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)  # no options: pzmq defaults
    sock.connect(args.endpoint)
    emit(ev="ready", name=args.name, t=time.monotonic())

    start = time.monotonic()
    nbytes = 0
    for i in range(args.count):
        if args.rate > 0:
            due = start + i / args.rate
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
        oos = args.oos_every > 0 and i % args.oos_every == args.oos_every - 1
        rid = None if i == args.missing_at else wire.new_request_id()
        name = f"Hunted-H4-{args.name}-Gen{i}" + ("-OOS" if oos else "-QUAL")
        candles = args.big_candles if i == args.big_at else 0
        body = wire.request(name, rid, rng, include_trades=oos, candles=candles)
        sock.send(body)  # blocking, like Swimmy
        nbytes += len(body)
        if not args.quiet:
            emit(ev="sent", id=rid, t=time.monotonic(), n=len(body), oos=oos)
    emit(ev="sent_all", count=args.count, bytes=nbytes, t=time.monotonic())
    sock.close()  # LINGER infinite: term() returns once everything reached tidepool
    ctx.term()
    emit(ev="delivered", t=time.monotonic())


if __name__ == "__main__":
    main()
