#!/usr/bin/python3
"""End-to-end: Swimmy's backtest path through the real tidepool binary.

Peers are independent processes speaking SWIMMY.md byte for byte (peer_*.py, python3-zmq):
two PUSH senders ("brain", "school"), a stand-in backtest service (PULL bound, three
workers, results in completion order, PUSH to localhost) and the brain's result reader
(PULL bound, non-blocking reads of up to 200 per loop). tidepool runs the SHIPPED
deploy/swimmy/tidepool.json with its ports rewritten to free ones.

Usage: test_swimmy.py --tidepool BIN --source SRC [--scenario NAME ...]
Exit status non-zero when any scenario fails.
"""

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

import harness as h
from harness import check, log, wait_until

SCENARIOS = collections.OrderedDict()


def scenario(fn):
    SCENARIOS[fn.__name__.replace("scenario_", "")] = fn
    return fn


class Env:
    """One tidepool on free ports, plus helpers to start the Swimmy peers around it."""

    def __init__(self, args, name, mutate=None):
        self.args = args
        self.dir = tempfile.mkdtemp(prefix=f"swimmy-{name}-")
        self.ports = {k: h.free_port() for k in h.SHIPPED_PORTS}
        self.http_port = h.free_port()
        _, shipped = h.load_shipped(args.source)
        self.cfg = h.rewrite_config(shipped, self.ports, self.http_port)
        if args.strip_correlation:
            for r in self.cfg["routes"]:
                r.pop("correlation", None)
        if mutate:
            mutate(self.cfg)
        self.tp = h.Tidepool(args.tidepool, self.cfg, self.dir, self.http_port)
        self.tp.wait_ready()
        self.sampler = h.Sampler(self.tp)
        self.req_ep = f"tcp://127.0.0.1:{self.ports['req']}"
        self.svc_ep = f"tcp://127.0.0.1:{self.ports['svc']}"
        # The real service's result socket always connects to localhost.
        self.res_ep = f"tcp://localhost:{self.ports['res']}"
        self.brain_ep = f"tcp://127.0.0.1:{self.ports['brain']}"
        self.n = collections.Counter()
        self.senders = []
        self.services = []
        self.brains = []

    def _name(self, kind):
        self.n[kind] += 1
        return f"{kind}{self.n[kind]}"

    def sender(self, role, count, rate=0.0, seed=1, **kw):
        argv = ["--endpoint", self.req_ep, "--name", role, "--count", count, "--rate", rate,
                "--seed", seed]
        for k, v in kw.items():
            argv += ["--" + k.replace("_", "-"), v]
        p = h.peer(self._name(f"sender-{role}-"), "peer_sender.py", *argv, log_dir=self.dir)
        self.senders.append(p)
        return p

    def service(self, workers=3, delay_ms="2,20", seed=7, json_every=0, lazy=False):
        p = h.peer(self._name("service"), "peer_backtest.py", "--bind", self.svc_ep,
                   "--results", self.res_ep, "--workers", workers, "--delay-ms", delay_ms,
                   "--seed", seed + len(self.services), "--json-every", json_every,
                   *(["--lazy"] if lazy else []), log_dir=self.dir)
        p.wait_event("ready", 15)
        self.services.append(p)
        return p

    def brain(self):
        p = h.peer(self._name("brain"), "peer_brain.py", "--bind", self.brain_ep,
                   log_dir=self.dir)
        p.wait_event("ready", 15)
        self.brains.append(p)
        return p

    # -- ledgers from what the peers saw

    def sent(self):
        return [e for s in self.senders for e in s.evs("sent")]

    def results(self):
        return [e for b in self.brains for e in b.evs("result")]

    def answers(self):
        return [e for s in self.services for e in s.evs("answer")]

    def wait_senders(self, timeout):
        for s in self.senders:
            s.wait_event("delivered", timeout)

    def close(self, ok):
        self.sampler.stop()
        rc = self.tp.terminate(timeout=30)
        for p in self.senders + self.services + self.brains:
            p.kill()
        if ok and rc != 0:
            ok = False
            log(f"  tidepool exited with {rc} on SIGTERM (contract: 0)")
        if not ok:
            log(f"  tidepool log tail ({self.tp.log_path}):\n" + self.tp.log_tail())
        elif not self.args.keep:
            shutil.rmtree(self.dir, ignore_errors=True)
        check(rc == 0, f"tidepool exit status {rc} after SIGTERM")


def expect_exactly_once(sent, results, what):
    """Every sent request_id answered exactly once; MISSING once per id-less request."""
    got = collections.Counter(r["id"] for r in results)
    ids = [s["id"] for s in sent if s["id"] is not None]
    missing = sum(1 for s in sent if s["id"] is None)
    dup = {k: c for k, c in got.items() if c > 1 and k != "MISSING"}
    check(not dup, f"{what}: duplicated results {list(dup.items())[:5]}")
    unanswered = [i for i in ids if got[i] == 0]
    check(not unanswered, f"{what}: {len(unanswered)} of {len(ids)} requests never answered "
          f"(first: {unanswered[:3]})")
    check(got["MISSING"] == missing,
          f"{what}: {got['MISSING']} MISSING results for {missing} id-less requests")
    unknown = set(got) - set(ids) - {"MISSING"}
    check(not unknown, f"{what}: results for unknown ids {list(unknown)[:3]}")
    bad = [r for r in results if not r.get("well_formed")]
    check(not bad, f"{what}: {len(bad)} results not in SWIMMY result form")
    return len(ids) + missing


def settle(env, expected_results, timeout):
    """Waits until the brain(s) hold expected_results results and tidepool's results route
    has forwarded exactly what it received (nothing still queued or in transit)."""

    def done():
        if len(env.results()) < expected_results:
            return False
        m = env.tp.metrics()
        rin = m.val("tidepool_received_messages_total", route="results")
        rout = m.val("tidepool_forwarded_messages_total", route="results")
        return rin == rout and len(env.results()) == rout
    wait_until(done, timeout,
               f"{expected_results} results at the brain (have {len(env.results())})")


def no_drops(m, route):
    d = m.get("tidepool_dropped_messages_total", route=route) or 0
    check(d == 0, f"route {route}: {d} messages dropped: "
          f"{m.series('tidepool_dropped_messages_total', route=route)}")


def check_correlation(env, answered_with_id, uncorrelated, in_flight=0, timeouts=0):
    """(f) tidepool's correlation metrics agree with what the peers saw."""
    m = wait_until(lambda: (lambda m: m if m.get("tidepool_in_flight", route="requests")
                            == in_flight else None)(env.tp.metrics()), 10,
                   f"tidepool_in_flight{{route=requests}} == {in_flight}")
    dur = m.val("tidepool_request_duration_seconds_count", route="requests")
    check(dur == answered_with_id,
          f"request_duration_seconds_count{{requests}} = {dur}, peers saw "
          f"{answered_with_id} answered requests with a request_id")
    unc = m.val("tidepool_uncorrelated_results_total")
    check(unc == uncorrelated, f"uncorrelated_results_total = {unc} "
          f"({m.series('tidepool_uncorrelated_results_total')}), expected {uncorrelated}")
    to = m.get("tidepool_correlation_timeouts_total") or 0
    check(to == timeouts, f"correlation_timeouts_total = {to}, expected {timeouts}")
    return m


def check_counters(env, m):
    """tidepool's per-route counters equal the peers' own counts (the peers' event lines
    may trail their socket calls by a moment, so this polls briefly)."""
    mismatch = []

    def agree():
        mm = env.tp.metrics()
        sent, answers, results = len(env.sent()), len(env.answers()), len(env.results())
        recv_svc = sum(s.count("recv") for s in env.services)
        mismatch.clear()
        for kind, r, want in [("received", "requests", sent),
                              ("forwarded", "requests", recv_svc),
                              ("received", "results", answers),
                              ("forwarded", "results", results)]:
            got = mm.val(f"tidepool_{kind}_messages_total", route=r)
            if got != want:
                mismatch.append(f"tidepool_{kind}_messages_total{{route={r}}} = {got}, "
                                f"peers: {want}")
        return not mismatch
    try:
        wait_until(agree, 5, "counters agree")
    except h.Failure:
        raise h.Failure("; ".join(mismatch)) from None


def report(name, answered, sent, drain=None, extra=""):
    d = f"; backlog drain {drain:.2f} s" if drain is not None else ""
    log(f"RESULT {name}: requests answered {answered} / sent {sent}{d}{extra}")


# ------------------------------------------------------------------ scenarios


@scenario
def scenario_config(args):
    """The shipped file passes check-config, and the effective config keeps its choices."""
    path, shipped = h.load_shipped(args.source)
    r = subprocess.run([args.tidepool, "check-config", path], capture_output=True, text=True,
                       timeout=30)
    check(r.returncode == 0, f"check-config {path}: exit {r.returncode}: {r.stderr.strip()}")
    import json
    eff = json.loads(r.stdout)
    for name in ("requests", "results"):
        want, got = h.route(shipped, name), h.route(eff, name)
        for sec in ("frontend", "backend", "queue", "flush"):
            for k, v in want[sec].items():
                check(got[sec][k] == v, f"effective {name}.{sec}.{k} = {got[sec][k]!r}, "
                      f"file says {v!r}")
    corr = h.route(eff, "requests").get("correlation")
    check(corr and corr.get("key") == "request_id" and corr.get("pair_with") == "results",
          f"effective correlation: {corr!r}")
    log("RESULT config: shipped deploy/swimmy/tidepool.json accepted by check-config")


@scenario
def scenario_late_service(args):
    """(a) The service starts 10 s after the senders: the backlog waits in tidepool and
    drains; every request answered exactly once, the ~9 MB inline-candle one included."""
    env = Env(args, "late")
    ok = False
    try:
        env.brain()
        t0 = time.monotonic()
        env.sender("brain", 150, rate=100, seed=11, oos_every=10, missing_at=20)
        env.sender("school", 300, rate=150, seed=12, oos_every=25, big_at=50,
                   big_candles=100_000)
        env.wait_senders(60)
        sent = env.sent()
        big = max(s["n"] for s in sent)
        check(big > 8_000_000, f"inline-candle request is only {big} bytes")
        # "delivered" means written to the connection; tidepool reads it a moment later.
        m = wait_until(lambda: (lambda m: m if m.val("tidepool_received_messages_total",
                                                     route="requests") == len(sent) else None)(
            env.tp.metrics()), 15, f"tidepool received all {len(sent)} requests")
        q = m.val("tidepool_queue_messages", route="requests")
        check(q == len(sent), f"backlog: {q} queued while {len(sent)} sent and no service")
        check(m.val("tidepool_backend_up", route="requests") == 0, "backend_up with no service")
        # The service comes up 10 s after the senders started.
        wait_until(lambda: time.monotonic() >= t0 + 10, 15, "10 s after the senders")
        svc = env.service()
        t_up = svc.evs("ready")[0]["t"]
        settle(env, len(sent), 90)
        answered = expect_exactly_once(sent, env.results(), "late_service")
        t_last = max(r["t"] for r in env.results())
        t_empty = env.sampler.first_time(
            t_up, lambda m: m.get("tidepool_queue_messages", route="requests") == 0)
        m = env.tp.metrics()
        no_drops(m, "requests")
        no_drops(m, "results")
        check_counters(env, m)
        if not args.strip_correlation:
            check_correlation(env, answered - 1, uncorrelated=1)
        # With no service at first, every request went through the queue and a flush.
        moved = m.val("tidepool_flushed_messages_total", route="requests")
        check(moved == len(sent), f"flushed_messages_total{{requests}} = {moved}, "
              f"{len(sent)} queued")
        connect = m.val("tidepool_flushes_total", route="requests", trigger="connect")
        check(connect >= 1, "no flush on connect when the service came up")
        fl = {l["trigger"]: int(v) for l, v in
              m.series("tidepool_flushed_messages_total", route="requests") if v}
        empty = (f"; requests queue empty {t_empty - t_up:.2f} s after the service came up"
                 if t_empty else "")
        report("late_service", answered, len(sent), t_last - t_up,
               f"{empty}; inline-candle request {big} bytes; messages moved by flush "
               f"trigger {fl}")
        ok = True
    finally:
        env.close(ok)


@scenario
def scenario_service_restart(args):
    """(b) The service is killed mid-stream and restarted. What tidepool guarantees in
    pipeline mode: nothing it still holds is lost; requests it had already handed to the
    dead service (its libzmq receive buffer, its workers, its unsent results) are lost,
    exactly as without tidepool. Everything sent after the kill is answered once."""
    service_restart(args, "service_restart")


@scenario
def scenario_service_restart_backlog(args):
    """(b') Same, with a service that takes a request only when a worker is free and is
    slower than the senders: the backlog sits in the service's own libzmq receive buffer
    (RCVHWM 1000) and dies with it. Shipped config (max_in_flight 0)."""
    service_restart(args, "service_restart_backlog", lazy=True, delay_ms="30,50")


@scenario
def scenario_service_restart_limited(args):
    """(b'') Same backlogged service with flush.max_in_flight 6 (timeout_ms cut to 3 s): the
    backlog stays in tidepool, a crash loses at most 6, and those 6 hold their slots until
    they time out: forwarding to the new service waits for timeout_ms."""

    def mutate(cfg):
        r = h.route(cfg, "requests")
        r["flush"]["max_in_flight"] = MAX_IN_FLIGHT
        r["correlation"]["timeout_ms"] = int(LIMITED_TIMEOUT_S * 1000)
    check(not args.strip_correlation, "needs correlation")
    service_restart(args, "service_restart_limited", lazy=True, delay_ms="30,50",
                    mutate=mutate, limited=True)


def service_restart(args, name, lazy=False, delay_ms="2,20", mutate=None, limited=False):
    env = Env(args, name, mutate)
    ok = False
    try:
        env.brain()
        svc1 = env.service(lazy=lazy, delay_ms=delay_ms)
        env.sender("school", 600, rate=100, seed=21, oos_every=20)
        env.sender("brain", 300, rate=50, seed=22, oos_every=15, missing_at=150)
        wait_until(lambda: svc1.count("answer") >= 150, 30, "150 answers from service1")
        t_svc1_killed = time.monotonic()  # the peers' "t" is the same system-wide clock
        svc1.kill()
        wait_until(lambda: env.tp.metrics().val("tidepool_backend_up", route="requests") == 0,
                   15, "tidepool notices the service is gone")
        # From here on tidepool knows: anything sent later must reach the next service.
        # (Between the kill and tidepool noticing, it may still hand requests to the dead
        # connection; those are lost like the rest of the dead service's buffers.)
        t_kill = time.monotonic()
        m_kill = env.tp.metrics()
        f_kill = m_kill.val("tidepool_forwarded_messages_total", route="requests")
        # Requests keep coming while the service is down: tidepool must queue them.
        n_at_kill = len(env.sent())
        wait_until(lambda: len(env.sent()) >= n_at_kill + 100, 30, "100 more requests sent")
        q_down = env.tp.metrics().val("tidepool_queue_messages", route="requests")
        check(q_down > 0, "nothing queued in tidepool while the service was down")
        svc2 = env.service(lazy=lazy, delay_ms=delay_ms)
        t_up = svc2.evs("ready")[0]["t"]
        env.wait_senders(60)
        sent = env.sent()

        def svc2_caught_up():
            m = env.tp.metrics()
            f = m.val("tidepool_forwarded_messages_total", route="requests")
            r = m.val("tidepool_received_messages_total", route="requests")
            q = m.val("tidepool_queue_messages", route="requests")
            return (r == len(sent) and q == 0 and svc2.count("recv") == f - f_kill
                    and svc2.count("answer") == svc2.count("recv"))
        wait_until(svc2_caught_up, 90, "service2 took and answered everything after the kill")
        wedge = max(0.0, svc2.evs("recv")[0]["t"] - t_up)  # "ready" may trail a first recv
        # Results of service1 still in its PUSH buffer at the kill never reach tidepool.
        wait_until(lambda: len(env.results()) >= svc2.count("answer"), 30, "results")
        settle(env, len(env.results()), 30)
        results = env.results()
        got = collections.Counter(r["id"] for r in results)
        dup = [k for k, c in got.items() if c > 1 and k != "MISSING"]
        check(not dup, f"duplicated results: {dup[:3]}")
        lost = [s for s in sent if got[s["id"] if s["id"] else "MISSING"] == 0]
        late = [s for s in lost if s["t"] > t_kill]
        check(not late, f"{len(late)} requests sent after the kill were lost: {late[:2]}")
        # Every lost request was handed to the dead service before it died.
        svc1_taken = svc1.count("recv")
        in_buffers = f_kill - svc1_taken
        unanswered_by_svc1 = svc1_taken - svc1.count("answer")
        # Exactly the requests handed to service1 whose results never came back are lost.
        svc1_delivered = len(results) - svc2.count("answer")
        check(len(lost) == f_kill - svc1_delivered,
              f"{len(lost)} lost, but {f_kill:.0f} were forwarded to service1 and "
              f"{svc1_delivered} of its results delivered")
        m = env.tp.metrics()
        no_drops(m, "requests")
        no_drops(m, "results")
        lost_with_id = sum(1 for s in lost if s["id"])
        if limited:
            check(len(lost) <= MAX_IN_FLIGHT,
                  f"{len(lost)} lost with max_in_flight {MAX_IN_FLIGHT}")
            # The lost requests were forwarded before the kill and hold their slots for
            # timeout_ms (3 s): nothing reaches service2 before then, however soon it came up.
            # Measured from the kill, not from service2's start, which a busy machine delays.
            held = svc2.evs("recv")[0]["t"] - t_svc1_killed
            check(held >= LIMITED_TIMEOUT_S - 1.0,
                  f"service2 got its first request {held:.2f} s after service1 was killed, "
                  f"before the lost requests' slots could time out ({LIMITED_TIMEOUT_S:.0f} s)")
        if not args.strip_correlation:
            # Lost requests stay in flight until timeout_ms (600 s shipped): that is the
            # signal; with the cut timeout they have expired and are counted.
            ans_with_id = sum(1 for s in sent if s["id"] and got[s["id"]] == 1)
            check_correlation(env, ans_with_id, uncorrelated=got["MISSING"],
                              in_flight=0 if limited else lost_with_id,
                              timeouts=lost_with_id if limited else 0)
        answered = len(sent) - len(lost)
        drain = (env.sampler.first_time(t_up, lambda m: m.get(
            "tidepool_queue_messages", route="requests") == 0) or float("nan")) - t_up
        report(name, answered, len(sent), drain,
               " (requests queue empty after service2 came up); lost with the killed "
               f"service: {len(lost)} (forwarded to it before the kill {f_kill:.0f}: "
               f"taken by its app {svc1_taken}, still in its libzmq "
               f"buffers {in_buffers:.0f}, taken but unanswered {unanswered_by_svc1}); "
               f"queued while down {q_down:.0f}; sent after the kill all answered; "
               f"service2's first request {wedge:.2f} s after it came up")
        ok = True
    finally:
        env.close(ok)


@scenario
def scenario_brain_restart(args):
    """(c) The brain is killed mid-stream and restarted: results wait in the results route
    while it is down and none is lost there. Results already delivered into the dead
    brain's libzmq buffer die with it, as without tidepool; we count them."""
    env = Env(args, "brainrestart")
    ok = False
    try:
        brain1 = env.brain()
        svc = env.service()
        env.sender("school", 600, rate=100, seed=31, oos_every=20)
        env.sender("brain", 300, rate=50, seed=32, oos_every=15)
        wait_until(lambda: brain1.count("result") >= 150, 30, "150 results at brain1")
        brain1.kill()
        wait_until(lambda: env.tp.metrics().val("tidepool_backend_up", route="results") == 0,
                   15, "tidepool notices the brain is gone")
        t_kill = time.monotonic()  # results answered after this must reach brain2
        f_kill = env.tp.metrics().val("tidepool_forwarded_messages_total", route="results")
        wait_until(lambda: env.tp.metrics().val("tidepool_queue_messages", route="results")
                   >= 100, 30, "100 results waiting in tidepool's results route")
        q_down = env.tp.metrics().val("tidepool_queue_messages", route="results")
        brain2 = env.brain()
        t_up = brain2.evs("ready")[0]["t"]
        env.wait_senders(60)
        sent = env.sent()
        wait_until(lambda: svc.count("answer") == len(sent), 60, "service answered all")
        answers = env.answers()

        def settled():
            m = env.tp.metrics()
            rin = m.val("tidepool_received_messages_total", route="results")
            rout = m.val("tidepool_forwarded_messages_total", route="results")
            return rin == len(answers) and rout == rin and \
                brain2.count("result") == rout - f_kill
        wait_until(settled, 60, "every result after the kill at brain2")
        results = env.results()
        got = collections.Counter(r["id"] for r in results)
        dup = [k for k, c in got.items() if c > 1]
        check(not dup, f"duplicated results: {dup[:3]}")
        lost = [a for a in answers if got[a["id"]] == 0]
        late = [a for a in lost if a["t"] > t_kill]
        check(not late, f"{len(late)} results produced after the brain died were lost")
        in_dead_buffer = f_kill - brain1.count("result")
        check(len(lost) == in_dead_buffer,
              f"{len(lost)} results lost but {in_dead_buffer} were in the dead brain's buffer")
        m = env.tp.metrics()
        no_drops(m, "requests")
        no_drops(m, "results")
        if not args.strip_correlation:
            # Results lost in the dead brain had passed tidepool: every request correlated.
            check_correlation(env, len(sent), uncorrelated=0)
        drain = (env.sampler.first_time(t_up, lambda m: m.get(
            "tidepool_queue_messages", route="results") == 0) or float("nan")) - t_up
        report("brain_restart", len(sent) - len(lost), len(sent), drain,
               " (results queue empty after brain2 came up); results queued in tidepool "
               f"while the brain was down: {q_down:.0f} "
               f"(max {env.sampler.max_of('tidepool_queue_messages', route='results'):.0f}),"
               f" all delivered to the new brain; lost in the killed brain's own libzmq "
               f"buffer: {len(lost)}")
        ok = True
    finally:
        env.close(ok)


@scenario
def scenario_burst(args):
    """(d) 5000 requests back to back from one sender (the school's own queue flush)."""
    env = Env(args, "burst")
    ok = False
    try:
        env.brain()
        env.service(delay_ms="0,2")
        s = env.sender("school", 5000, rate=0, seed=41, oos_every=50)
        s.wait_event("delivered", 60)
        t_first = s.evs("ready")[0]["t"]
        send_time = s.evs("sent_all")[0]["t"] - t_first
        sent = env.sent()
        settle(env, len(sent), 120)
        answered = expect_exactly_once(sent, env.results(), "burst")
        m = env.tp.metrics()
        no_drops(m, "requests")
        no_drops(m, "results")
        check_counters(env, m)
        if not args.strip_correlation:
            check_correlation(env, answered, uncorrelated=0)
        drain = max(r["t"] for r in env.results()) - t_first
        qmax = env.sampler.max_of("tidepool_queue_messages", route="requests")
        report("burst", answered, len(sent), drain,
               f" (first send → last result); sender blocked {send_time:.2f} s for 5000 "
               f"sends; max requests queued (sampled) {qmax:.0f}")
        ok = True
    finally:
        env.close(ok)


@scenario
def scenario_overflow(args):
    """The shipped overflow choices with small queues: a full requests queue (drop-oldest)
    never stalls the senders and keeps the newest requests in order; a full results queue
    (block) loses nothing while the brain is away."""

    def mutate(cfg):
        h.route(cfg, "requests")["queue"]["max_messages"] = 200
        h.route(cfg, "results")["queue"]["max_messages"] = 50
    env = Env(args, "overflow", mutate)
    ok = False
    try:
        check(h.route(env.cfg, "requests")["queue"]["overflow"] == "drop-oldest" and
              h.route(env.cfg, "results")["queue"]["overflow"] == "block",
              "scenario written for the shipped choices drop-oldest / block")
        # 20000: more than libzmq and TCP buffers hold (with `block` this sender stalls
        # after ~9500 sends here), so only a non-blocking policy lets it finish.
        n = 20000
        s = env.sender("school", n, rate=0, seed=71)
        s.wait_event("delivered", 30)  # a stalled sender would time out here
        stall = s.evs("delivered")[0]["t"] - s.evs("ready")[0]["t"]
        sent = env.sent()
        m = wait_until(lambda: (lambda m: m if m.val("tidepool_received_messages_total",
                                                     route="requests") == n else None)(
            env.tp.metrics()), 30, f"{n} requests received")
        q = m.val("tidepool_queue_messages", route="requests")
        ev = m.val("tidepool_dropped_messages_total", route="requests", reason="evicted")
        check(q == 200 and ev == n - 200, f"queue {q}, evicted {ev}; expected 200 and {n - 200}")
        svc = env.service(delay_ms="0,1")
        wait_until(lambda: svc.count("recv") == 200 and svc.count("answer") == 200, 30,
                   "service answered the 200 kept requests")
        kept = [e["id"] for e in svc.evs("recv")]
        newest = [e["id"] for e in sent[-200:]]
        check(kept == newest, "drop-oldest did not keep the newest 200 requests in order")
        # Results: the brain is away; tidepool's results queue fills (50) and then stops
        # reading; the rest waits in libzmq buffers. Nothing is dropped.
        wait_until(lambda: env.tp.metrics().val("tidepool_queue_messages",
                                                route="results") >= 50, 15, "results queue full")
        qr = env.tp.metrics().val("tidepool_queue_messages", route="results")
        brain = env.brain()
        settle(env, 200, 30)
        got = [r["id"] for r in brain.evs("result")]
        check(sorted(got) == sorted(newest), "results delivered differ from answered requests")
        m = env.tp.metrics()
        no_drops(m, "results")
        report("overflow", 200, len(sent), None,
               f"; sender never stalled ({n} sends in {stall:.2f} s with a 200-message "
               f"queue and no service); evicted {ev:.0f} oldest, kept the newest 200 in order; "
               f"results queue held {qr:.0f} while the brain was away (block), none dropped")
        ok = True
    finally:
        env.close(ok)


MAX_IN_FLIGHT = 6  # production: 3 workers, 6 in flight
LIMITED_TIMEOUT_S = 3.0  # service_restart_limited's correlation.timeout_ms, cut from 600 s


@scenario
def scenario_max_in_flight(args):
    """(e) flush.max_in_flight on requests: the service never holds more than that many
    unanswered requests, and the limit is actually reached (so the check can fail)."""

    def mutate(cfg):
        h.route(cfg, "requests")["flush"]["max_in_flight"] = MAX_IN_FLIGHT
    env = Env(args, "maxinflight", mutate)
    ok = False
    try:
        env.brain()
        svc = env.service(delay_ms="5,30")
        env.sender("school", 300, rate=0, seed=51, oos_every=25)
        env.wait_senders(30)
        sent = env.sent()
        t0 = min(s["t"] for s in sent)
        settle(env, len(sent), 120)
        answered = expect_exactly_once(sent, env.results(), "max_in_flight")
        peak = max(e["outstanding"] for e in svc.evs("recv"))
        check(peak <= MAX_IN_FLIGHT,
              f"service saw {peak} outstanding requests, max_in_flight is {MAX_IN_FLIGHT}")
        check(peak == MAX_IN_FLIGHT,
              f"the limit never bit: peak outstanding {peak} < {MAX_IN_FLIGHT}")
        qmax = env.sampler.max_of("tidepool_queue_messages", route="requests")
        check(qmax and qmax > 0, "requests never waited in tidepool's queue")
        ifmax = env.sampler.max_of("tidepool_in_flight", route="requests")
        check(ifmax is not None and ifmax <= MAX_IN_FLIGHT,
              f"tidepool_in_flight peaked at {ifmax}")
        if not args.strip_correlation:
            check_correlation(env, answered, uncorrelated=0)
        dur = max(r["t"] for r in env.results()) - t0
        report("max_in_flight", answered, len(sent), dur,
               f"; peak outstanding at the service {peak} (limit {MAX_IN_FLIGHT}); "
               f"{answered / dur:.0f} requests/s")
        ok = True
    finally:
        env.close(ok)


@scenario
def scenario_correlation(args):
    """(f) Correlation metrics agree with what the peers saw, with -OOS trade lists, JSON
    results, a ~9 MB request and an id-less one (its MISSING result is the one
    uncorrelated result)."""
    env = Env(args, "correlation")
    ok = False
    try:
        env.brain()
        env.service(json_every=7)  # some results in the JSON form the brain also accepts
        env.sender("brain", 100, rate=200, seed=61, oos_every=5, missing_at=37)
        # The ~9 MB inline-candle request on the fast path (service present).
        env.sender("school", 200, rate=300, seed=62, oos_every=10, big_at=100)
        env.wait_senders(30)
        sent = env.sent()
        settle(env, len(sent), 60)
        answered = expect_exactly_once(sent, env.results(), "correlation")
        json_results = sum(1 for r in env.results() if r.get("json"))
        check(json_results > 0, "no JSON result went through")
        m = check_correlation(env, answered - 1, uncorrelated=1)
        check_counters(env, m)
        n = m.val("tidepool_request_duration_seconds_count", route="requests")
        s = m.val("tidepool_request_duration_seconds_sum", route="requests")
        report("correlation", answered, len(sent), None,
               f"; in_flight 0, duration samples {n:.0f} (mean {s / n * 1000:.1f} ms), "
               f"uncorrelated 1 (the MISSING result); {json_results} JSON results")
        ok = True
    finally:
        env.close(ok)


@scenario
def scenario_timeouts(args):
    """Requests whose results never come expire after correlation.timeout_ms, are counted,
    and free their max_in_flight slots (a service that lost work cannot wedge tidepool)."""

    def mutate(cfg):
        r = h.route(cfg, "requests")
        r["correlation"]["timeout_ms"] = 1500
        r["flush"]["max_in_flight"] = MAX_IN_FLIGHT
    check(not args.strip_correlation, "needs correlation")
    env = Env(args, "timeouts", mutate)
    ok = False
    try:
        svc = h.peer("service-mute", "peer_backtest.py", "--bind", env.svc_ep, "--results",
                     env.res_ep, "--no-answer", log_dir=env.dir)
        svc.wait_event("ready", 15)
        env.services.append(svc)
        env.sender("school", 3 * MAX_IN_FLIGHT, rate=0, seed=81)
        env.wait_senders(15)
        t0 = time.monotonic()
        m = wait_until(lambda: (lambda m: m if m.get("tidepool_in_flight", route="requests")
                                == MAX_IN_FLIGHT else None)(env.tp.metrics()), 10,
                       f"{MAX_IN_FLIGHT} in flight")
        q = m.val("tidepool_queue_messages", route="requests")
        f = m.val("tidepool_forwarded_messages_total", route="requests")
        check(q > 0 and q == 3 * MAX_IN_FLIGHT - f,
              f"{q} queued behind the in-flight limit with {f} of {3 * MAX_IN_FLIGHT} forwarded")
        # Each timeout frees a slot: all 18 are forwarded in three waves, then expire.
        m = wait_until(lambda: (lambda m: m if m.get("tidepool_correlation_timeouts_total",
                                                     route="requests") == 3 * MAX_IN_FLIGHT
                                else None)(env.tp.metrics()), 15, "all requests timed out")
        took = time.monotonic() - t0
        fw = m.val("tidepool_forwarded_messages_total", route="requests")
        check(fw == 3 * MAX_IN_FLIGHT, f"forwarded {fw}")
        check(m.val("tidepool_in_flight", route="requests") == 0, "in_flight not back to 0")
        check(took >= 3 * 1.5 - 0.5, f"three 1.5 s timeout waves took only {took:.1f} s")
        report("timeouts", 0, 3 * MAX_IN_FLIGHT, None,
               f"; all {3 * MAX_IN_FLIGHT} timed out in {took:.1f} s (3 waves of "
               f"{MAX_IN_FLIGHT} at timeout_ms 1500), in_flight back to 0")
        ok = True
    finally:
        env.close(ok)


@scenario
def scenario_shutdown(args):
    """SIGTERM with results stuck (brain away): tidepool drains for the shipped
    drain_timeout_ms and exits 0 before systemd's TimeoutStopSec would SIGKILL it."""
    _, shipped = h.load_shipped(args.source)
    drain_s = shipped["shutdown"]["drain_timeout_ms"] / 1000.0
    with open(os.path.join(args.source, "deploy", "swimmy", "tidepool.service")) as f:
        stop_s = next(float(line.split("=", 1)[1]) for line in f
                      if line.startswith("TimeoutStopSec="))
    env = Env(args, "shutdown")
    ok = False
    try:
        env.service(delay_ms="0,1")
        env.sender("school", 50, rate=0, seed=91)
        env.wait_senders(15)
        wait_until(lambda: env.tp.metrics().val("tidepool_queue_messages", route="results")
                   == 50, 15, "50 results waiting for the absent brain")
        t0 = time.monotonic()
        env.tp.p.send_signal(15)
        wait_until(lambda: env.tp.get("/readyz")[0] in (503, None), 5, "/readyz 503")
        rc = env.tp.p.wait(timeout=stop_s + 5)
        took = time.monotonic() - t0
        check(rc == 0, f"exit status {rc}")
        check(drain_s - 0.5 <= took < stop_s,
              f"exit after {took:.1f} s; drain_timeout {drain_s} s, TimeoutStopSec {stop_s} s")
        report("shutdown", 50, 50, None,
               f"; SIGTERM with 50 results undeliverable: exit 0 after {took:.1f} s "
               f"(drain_timeout {drain_s:.0f} s < TimeoutStopSec {stop_s:.0f} s)")
        ok = True
    finally:
        env.close(ok)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tidepool", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--scenario", action="append", choices=list(SCENARIOS) + ["all"])
    ap.add_argument("--keep", action="store_true", help="keep work dirs")
    ap.add_argument("--strip-correlation", action="store_true",
                    help="diagnostics only: run without the correlation block")
    args = ap.parse_args()
    names = list(SCENARIOS) if not args.scenario or "all" in args.scenario else args.scenario
    if not os.access(args.tidepool, os.X_OK):
        log(f"tidepool binary not found: {args.tidepool}")
        return 1
    failed = []
    try:
        for name in names:
            t = time.monotonic()
            log(f"=== {name}: {SCENARIOS[name].__doc__.strip().splitlines()[0]}")
            try:
                SCENARIOS[name](args)
                log(f"--- {name}: PASS ({time.monotonic() - t:.1f} s)")
            except Exception as e:  # noqa: BLE001 - report every scenario
                failed.append(name)
                if not isinstance(e, h.Failure):
                    traceback.print_exc()
                log(f"--- {name}: FAIL ({time.monotonic() - t:.1f} s): {e}")
            finally:
                h.cleanup()
    finally:
        h.cleanup()
    log(f"{len(names) - len(failed)}/{len(names)} scenarios passed"
        + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
