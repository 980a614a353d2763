"""Swimmy's backtest wire format (shared/SWIMMY.md), byte for byte.

Every message is one ZeroMQ frame holding one line of S-expression text, UTF-8, without a
trailing newline or NUL. The peers in this folder build and read messages only through
this module so that the format lives in one place.
"""

import json
import random
import re
import uuid

# A request_id is a lowercase UUIDv4 written as a dotted pair.
_REQUEST_ID = re.compile(rb'\(request_id \. "([^"\\]*)"\)')

_INDICATORS = ("rsi", "sma", "macd", "bb", "stoch")
_SYMBOLS = ("USDJPY", "EURUSD", "GBPUSD", "EURJPY")


def new_request_id() -> str:
    return str(uuid.uuid4())  # uuid4 renders lowercase


def _strategy(name: str, rng: random.Random) -> str:
    return (
        f'(strategy (name . "{name}") (sma_short . {rng.randint(3, 20)}) '
        f"(sma_long . {rng.randint(21, 200)}) (sl . {rng.choice((0.1, 0.25, 0.5))}) "
        f"(tp . {rng.choice((0.25, 0.5, 1.0))}) (volume . 0.01) "
        f"(indicator_type . {rng.choice(_INDICATORS)}) (timeframe . 240) "
        f'(filter_tf . "") (filter_period . 0) (filter_logic . ""))'
    )


def request(
    name: str,
    request_id: "str | None",
    rng: random.Random,
    include_trades: bool = False,
    candles: int = 0,
) -> bytes:
    """One BACKTEST request as the school/brain send it (~430-500 bytes when typical).

    request_id None: the older-sender form without the pair. candles > 0: the CSV is
    missing and the candles travel inline, ~85 bytes each (100,000 candles ~ 9 MB).
    """
    symbol = rng.choice(_SYMBOLS)
    parts = ['((action . "BACKTEST") ', _strategy(name, rng)]
    if request_id is not None:
        parts.append(f' (request_id . "{request_id}")')
    parts.append(f' (data_id "{symbol}_M1")')
    if candles:
        parts.append(" (candles_file) (candles ")
        parts.append(_inline_candles(candles, rng))
        parts.append(")")
    else:
        parts.append(f' (candles_file "/home/swimmy/data/historical/{symbol}_M1.csv")')
    parts.append(f' (symbol . "{symbol}") (timeframe 240)')
    if include_trades:
        parts.append(" (include_trades . t)")
    parts.append(")")
    return "".join(parts).encode("utf-8")


def _inline_candles(count: int, rng: random.Random) -> str:
    t0 = 3913000000
    price = 150.0
    out = []
    for i in range(count):
        o = price
        c = o + rng.uniform(-0.05, 0.05)
        h = max(o, c) + rng.uniform(0, 0.02)
        lo = min(o, c) - rng.uniform(0, 0.02)
        out.append(
            f"((t . {t0 + 60 * i}) (o . {o:.3f}) (h . {h:.3f}) (l . {lo:.3f}) "
            f"(c . {c:.3f}) (v . {rng.uniform(1, 99):.1f}))"
        )
        price = c
    return "(" + " ".join(out) + ")"


def request_id_of(message: bytes) -> "str | None":
    """The first (request_id . "...") pair; requests carry it at top level, results inside
    the nested (result . (...)) list. Our own messages never nest it elsewhere."""
    m = _REQUEST_ID.search(message)
    return m.group(1).decode("utf-8") if m else None


def strategy_name_of(request_msg: bytes) -> str:
    m = re.search(rb'\(name \. "([^"\\]*)"\)', request_msg)
    return m.group(1).decode("utf-8") if m else "unknown"


def wants_trades(request_msg: bytes) -> bool:
    return b"(include_trades . t)" in request_msg


def result(name: str, request_id: "str | None", rng: random.Random, trades: bool) -> bytes:
    """A BACKTEST_RESULT as the service sends it; request_id "MISSING" when the request
    had none; include_trades requests get a trade_list (large)."""
    rid = request_id if request_id is not None else "MISSING"
    n = rng.randint(5, 120)
    fields = [
        f'(strategy_name . "{name}")',
        f"(trades . {n})",
        f"(sharpe . {rng.uniform(-1, 2):.2f})",
        f"(pnl . {rng.uniform(-1, 1):.4f})",
        f"(win_rate . {rng.uniform(0.3, 0.7):.3f})",
        f"(profit_factor . {rng.uniform(0.5, 2):.2f})",
    ]
    if trades:
        tl = " ".join(
            f"((entry_time . {3913000000 + 3600 * i}) (exit_time . {3913001800 + 3600 * i}) "
            f'(side . "{rng.choice(("BUY", "SELL"))}") (pnl . {rng.uniform(-0.01, 0.01):.5f}))'
            for i in range(n)
        )
        fields.append(f"(trade_list . ({tl}))")
    fields.append(f'(request_id . "{rid}")')
    return ('((type . "BACKTEST_RESULT") (result . (' + " ".join(fields) + ")))").encode("utf-8")


def result_json(name: str, request_id: "str | None", rng: random.Random) -> bytes:
    """The JSON form of a result, which the brain also accepts."""
    return json.dumps({"type": "BACKTEST_RESULT", "result": {
        "strategy_name": name, "trades": rng.randint(5, 120),
        "sharpe": round(rng.uniform(-1, 2), 2), "pnl": round(rng.uniform(-1, 1), 4),
        "request_id": request_id if request_id is not None else "MISSING"}}).encode("utf-8")


def read_result(message: bytes) -> "tuple[str | None, bool]":
    """(request_id, well_formed) of a result in either form the brain accepts."""
    if message.startswith(b"{"):
        try:
            obj = json.loads(message)
            return obj["result"]["request_id"], obj["type"] == "BACKTEST_RESULT"
        except (ValueError, KeyError, TypeError):
            return None, False
    ok = (message.startswith(b'((type . "BACKTEST_RESULT") (result . (')
          and message.endswith(b")))"))
    return request_id_of(message), ok
