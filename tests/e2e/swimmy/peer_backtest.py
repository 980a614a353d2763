#!/usr/bin/python3
"""Stand-in for Swimmy's backtest service.

PULL bound on the request port, a few worker threads that answer in completion order
(random small delays), PUSH connected to localhost on the result port, libzmq defaults.
Reports every request taken from the socket and every result sent as JSON lines, with the
number of requests outstanding (taken, not yet answered) at that moment.
"""

import argparse
import json
import queue
import random
import sys
import threading
import time

import zmq

import swimmy_wire as wire

_out_lock = threading.Lock()


def emit(**ev):
    line = json.dumps(ev) + "\n"
    with _out_lock:
        sys.stdout.write(line)
        sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", required=True)
    ap.add_argument("--results", required=True, help="endpoint the result PUSH connects to")
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--delay-ms", default="2,20", help="min,max processing time")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-answer", action="store_true", help="read and never answer")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--json-every", type=int, default=0, help="every Nth result as JSON")
    ap.add_argument("--lazy", action="store_true",
                    help="take a request only when a worker is free (a backlog then waits "
                         "in this process's libzmq receive buffer)")
    args = ap.parse_args()
    dmin, dmax = (float(x) / 1000.0 for x in args.delay_ms.split(","))

    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.bind(args.bind)
    work = queue.Queue()
    done = queue.Queue()
    lock = threading.Lock()
    state = {"outstanding": 0, "max": 0, "received": 0, "answered": 0}

    idle = threading.Semaphore(args.workers)

    def reader():
        while True:
            if args.lazy:
                idle.acquire()
            body = pull.recv()
            rid = wire.request_id_of(body)
            with lock:
                state["received"] += 1
                if args.no_answer:
                    if state["received"] % 10000 == 0:
                        emit(ev="progress", received=state["received"], t=time.monotonic())
                    continue
                state["outstanding"] += 1
                state["max"] = max(state["max"], state["outstanding"])
                out = state["outstanding"]
            if not args.quiet:
                emit(ev="recv", id=rid, t=time.monotonic(), outstanding=out, n=len(body))
            work.put(body)

    def worker(seed):
        rng = random.Random(seed)
        while True:
            body = work.get()
            time.sleep(rng.uniform(dmin, dmax))
            rid = wire.request_id_of(body)
            name = wire.strategy_name_of(body)
            with lock:
                state["answered"] += 1
                as_json = args.json_every > 0 and state["answered"] % args.json_every == 0
            if as_json:
                res = wire.result_json(name, rid, rng)
            else:
                res = wire.result(name, rid, rng, wire.wants_trades(body))
            done.put((rid, res))
            if args.lazy:
                idle.release()

    def sender():
        push = ctx.socket(zmq.PUSH)
        push.connect(args.results)
        while True:
            rid, res = done.get()
            # Counted as answered before the send: tidepool may see the result, free an
            # in-flight slot and hand over the next request before send() returns here.
            t = time.monotonic()
            with lock:
                state["outstanding"] -= 1
                out = state["outstanding"]
            push.send(res)
            if not args.quiet:
                emit(ev="answer", id=rid if rid is not None else "MISSING", t=t,
                     outstanding=out)

    threads = [threading.Thread(target=reader, daemon=True),
               threading.Thread(target=sender, daemon=True)]
    threads += [threading.Thread(target=worker, args=(args.seed * 100 + i,), daemon=True)
                for i in range(args.workers)]
    for t in threads:
        t.start()
    emit(ev="ready", t=time.monotonic())
    # Runs until killed, like the real service.
    threading.Event().wait()


if __name__ == "__main__":
    main()
