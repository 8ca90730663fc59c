"""Bad input from the venue and crashes inside the session, live mode against the local exchange (issue 9, items
2 and 3).

- A malformed fill (NaN price, size <= 0, NaN fee) over the WS user stream, and from REST ``userFills`` during a
  resync, is dropped at the adapter: the bot keeps running, its fills/position equal the server's, the bad fills
  are counted (once per kind in the log).
- A malformed ``openOrders`` row and a malformed ``clearinghouseState`` do not kill the periodic reconcile nor the
  resync: both keep running afterwards.
- An exception inside the engine (``on_venue`` raising once) makes the session cancel everything before the
  error propagates: nothing of ours rests on the server.

Fault injection is test-only and touches no server code: WS messages are pushed through the server's own outbox and
dispatcher (``core.outbox`` + ``server._dispatch()``), and REST/WS-post info replies are corrupted by wrapping the
server core's ``handle_info`` on its instance (:class:`InfoTamper`).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from hlmm.sim.server.faults import FaultStep
from hlmm.venue.hyperliquid.wallet import Wallet

from .harness import COIN, KEY, Monitor, RecLog, bot_config, check_accounting, make_server, run_bot, server_records

ADDR = Wallet.from_key(KEY).address.lower()


# ---- test-only fault injection ---------------------------------------------------------------------------------
class InfoTamper:
    """Wraps ``ExchangeCore.handle_info`` on the server instance: counts calls per info type (with wall times) and
    lets a rule rewrite the reply of one type."""

    def __init__(self, core: Any) -> None:
        self.orig = core.handle_info
        self.rules: dict[str, Callable[[Any], Any]] = {}
        self.calls: dict[str, list[float]] = {}
        core.handle_info = self

    def __call__(self, body: Any, now: float) -> Any:
        out = self.orig(body, now)
        t = body.get("type") if isinstance(body, dict) else None
        if isinstance(t, str):
            self.calls.setdefault(t, []).append(time.time())
            rule = self.rules.get(t)
            if rule is not None:
                out = rule(out)
        return out

    def n_between(self, t: str, t0: float, t1: float) -> int:
        return sum(t0 <= x <= t1 for x in self.calls.get(t, []))


def install_tamper(st: Any) -> InfoTamper:
    return st.sync(lambda: InfoTamper(st.server.core))


def inject_ws(st: Any, channel: str, data: Any) -> None:
    """Push one message on our account's ``channel`` through the server's own dispatcher."""

    def do() -> None:
        st.server.core.outbox.append((channel, ADDR, data))
        st.server._dispatch()

    st.sync(do)


def one_resting_oid(st: Any) -> int:
    def get() -> int:
        core = st.server.core
        acct = core.accounts[ADDR]
        return core._gid(ADDR, acct.ex.open_orders(COIN)[0].oid)

    return st.sync(get)


def bad_fills(oid: int, tid0: int) -> list[dict]:
    """Three malformed fills of one of our orders: NaN price, size 0, NaN fee."""
    now_ms = int(time.time() * 1000)
    base = {"coin": COIN, "px": "60000.0", "sz": "0.001", "side": "B", "time": now_ms, "startPosition": "0",
            "dir": "Open Long", "closedPnl": "0", "hash": "0x" + "ab" * 32, "oid": oid, "crossed": False,
            "fee": "0.01", "feeToken": "USDC"}
    return [{**base, "tid": tid0, "px": "NaN"}, {**base, "tid": tid0 + 1, "sz": "0"},
            {**base, "tid": tid0 + 2, "fee": "NaN"}]


def when_quoting(mon: Monitor, fn: Callable[[], None], delay_s: float = 1.0,
                 timeout_s: float = 40.0) -> threading.Thread:
    """Run ``fn`` in a thread ``delay_s`` after the server first shows orders of ours resting (bounded wait)."""

    def run() -> None:
        end = time.time() + timeout_s
        while time.time() < end and not any(r > 0 for _, _, r, _ in mon.samples):
            time.sleep(0.05)
        time.sleep(delay_s)
        fn()

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th


def bad_input_logs(log: RecLog, kind: str) -> int:
    return sum(1 for _, _, e, kw in log.events if e == "bad_input" and kw.get("kind") == kind)


def fast_reconcile(monkeypatch: pytest.MonkeyPatch) -> None:
    from hlmm.venue.hyperliquid.adapter import HyperliquidVenue

    monkeypatch.setitem(HyperliquidVenue.__init__.__kwdefaults__, "reconcile_interval_s", 1.0)


def finish(res: Any, st: Any, mon: Monitor) -> dict:
    time.sleep(0.3)
    mon.stop()
    rec = server_records(st, ADDR)
    counts = check_accounting(res, rec)  # fills (tid, oid) and position identical to the server's
    assert rec["resting"] == 0 and res.resting_after_shutdown == 0
    assert res.stopped_by == "duration", "the bot did not run to its end"
    return counts


# ---- item 2: malformed fills -----------------------------------------------------------------------------------
async def test_malformed_fills_over_ws_are_dropped_and_counted(tmp_path):
    with make_server() as st:
        log = RecLog()
        mon = Monitor(st, ADDR).start()
        sent: list[dict] = []

        def inject() -> None:
            fills = bad_fills(one_resting_oid(st), 9_000_000_001)
            sent.extend(fills)
            inject_ws(st, "userFills", {"isSnapshot": False, "user": ADDR, "fills": fills})

        th = when_quoting(mon, inject)
        res = await run_bot(st, bot_config(st.url, str(tmp_path)), 12.0, log)
        th.join(5)
        counts = finish(res, st, mon)
        assert len(sent) == 3, "never quoted: nothing injected"
        bot_tids = {tid for tid, _ in res.engine.tracker.fill_keys()}
        assert not bot_tids & {f["tid"] for f in sent}, "a malformed fill reached the engine"
        assert res.venue.stats["bad_fill"] == 3
        assert bad_input_logs(log, "fill") == 1, "bad fills must be logged once per kind"
        assert all(math.isfinite(x) for x in (res.engine.portfolio.position, res.engine.portfolio.cash))
        print(json.dumps({"scenario": "bad_fills_ws", **counts, "bad_fill": res.venue.stats["bad_fill"]}))


async def test_malformed_fills_from_rest_during_resync_are_dropped(tmp_path):
    with make_server() as st:
        log = RecLog()
        mon = Monitor(st, ADDR).start()
        tamper = install_tamper(st)
        sent: list[dict] = []

        def inject() -> None:
            sent.extend(bad_fills(one_resting_oid(st), 9_100_000_001))
            tamper.rules["userFills"] = lambda out: [*sent, *out]
            st.call(lambda: st.server.apply_fault(FaultStep(0, "drop_ws", {"target": "hl"})))

        th = when_quoting(mon, inject)
        res = await run_bot(st, bot_config(st.url, str(tmp_path)), 14.0, log)
        th.join(5)
        counts = finish(res, st, mon)
        assert len(sent) == 3, "never quoted: nothing injected"
        assert res.venue.stats["resyncs"] >= 1 and tamper.calls.get("userFills"), "no resync after the drop"
        bot_tids = {tid for tid, _ in res.engine.tracker.fill_keys()}
        assert not bot_tids & {f["tid"] for f in sent}, "a malformed fill reached the engine"
        assert res.venue.stats["bad_fill"] >= 3
        assert bad_input_logs(log, "fill") == 1
        assert res.venue.healthy, "the venue did not recover after the resync"
        print(json.dumps({"scenario": "bad_fills_rest_resync", **counts, "bad_fill": res.venue.stats["bad_fill"]}))


# ---- item 3: malformed REST replies must not kill reconcile / resync -----------------------------------------
def corrupt_n(tamper: InfoTamper, t: str, n: int, bad: Callable[[Any], Any]) -> Callable[[], float | None]:
    """Corrupt the next ``n`` replies of type ``t``; returns a function giving the time the first one went out."""
    left = [n]
    done: list[float] = []

    def rule(out: Any) -> Any:
        if left[0] <= 0:
            return out
        left[0] -= 1
        done.append(time.time())
        return bad(out)

    tamper.rules[t] = rule
    return lambda: done[0] if done else None


async def test_malformed_open_orders_row_does_not_kill_reconcile(tmp_path, monkeypatch):
    fast_reconcile(monkeypatch)
    with make_server() as st:
        log = RecLog()
        mon = Monitor(st, ADDR).start()
        tamper = install_tamper(st)
        bad_done: list[Callable[[], float | None]] = []
        row = {"coin": COIN, "side": "B", "limitPx": "NaN", "sz": "0.01", "oid": "x", "timestamp": 0}

        th = when_quoting(mon, lambda: bad_done.append(corrupt_n(tamper, "openOrders", 2, lambda out: [row, *out])))
        res = await run_bot(st, bot_config(st.url, str(tmp_path)), 14.0, log)
        th.join(5)
        counts = finish(res, st, mon)
        t_bad = bad_done[0]() if bad_done else None
        t_shutdown = log.first("shutdown")
        assert t_bad is not None and t_shutdown is not None
        assert t_shutdown - t_bad >= 5.0, "run too short to see the reconcile after the bad rows"
        n_after = tamper.n_between("openOrders", t_bad + 1.5, t_shutdown - 0.2)
        assert n_after >= 3, f"reconcile stopped after a malformed openOrders row ({n_after} checks after it)"
        assert res.venue.stats["bad_open_orders"] >= 2
        assert bad_input_logs(log, "open_orders") == 1
        print(json.dumps({"scenario": "bad_open_orders", **counts, "reconciles_after": n_after}))


async def test_malformed_clearinghouse_state_does_not_kill_reconcile_or_resync(tmp_path, monkeypatch):
    fast_reconcile(monkeypatch)
    with make_server() as st:
        log = RecLog()
        mon = Monitor(st, ADDR).start()
        tamper = install_tamper(st)
        bad_done: list[Callable[[], float | None]] = []
        bad = {"assetPositions": [{"position": {"coin": COIN, "szi": "abc", "entryPx": "NaN"}, "type": "oneWay"}],
               "marginSummary": {"accountValue": "NaN"}}
        t_drop: list[float] = []

        def inject() -> None:
            bad_done.append(corrupt_n(tamper, "clearinghouseState", 3, lambda out: bad))
            time.sleep(1.5)  # a reconcile meets the bad reply first, then the resync after a WS drop
            t_drop.append(time.time())
            st.call(lambda: st.server.apply_fault(FaultStep(0, "drop_ws", {"target": "hl"})))

        th = when_quoting(mon, inject)
        res = await run_bot(st, bot_config(st.url, str(tmp_path)), 16.0, log)
        th.join(5)
        counts = finish(res, st, mon)
        t_bad = bad_done[0]() if bad_done else None
        t_shutdown = log.first("shutdown")
        assert t_bad is not None and t_shutdown is not None and t_drop
        assert t_shutdown - t_bad >= 6.0, "run too short to see the reconcile after the bad replies"
        n_after = tamper.n_between("clearinghouseState", t_bad + 3.0, t_shutdown - 0.2)
        assert n_after >= 3, f"reconcile stopped after a malformed clearinghouseState ({n_after} checks after it)"
        healthy_again = [t for t, _, e, kw in log.events if e == "venue_healthy" and kw.get("resynced")
                         and t > t_drop[0]]
        assert healthy_again, "no successful resync after the drop"
        assert res.venue.healthy
        assert res.venue.stats["bad_clearinghouse"] >= 3
        assert bad_input_logs(log, "clearinghouse") == 1
        print(json.dumps({"scenario": "bad_clearinghouse", **counts, "reconciles_after": n_after,
                          "resynced_after_s": round(healthy_again[0] - t_drop[0], 2)}))


# ---- item 2: any exception in the session runs the shutdown path --------------------------------------------
async def test_engine_exception_cancels_everything_before_exiting(tmp_path, monkeypatch):
    from hlmm.engine.core import EngineCore
    from hlmm.venue.base import OrderAccepted

    orig = EngineCore.on_venue
    raised: list[float] = []
    acked_at_raise: list[int] = []

    def on_venue(self: Any, ev: Any) -> Any:
        acts = orig(self, ev)
        n_acked = sum(1 for o in self.tracker.live(self.coin) if o.acked)
        if not raised and isinstance(ev, OrderAccepted) and n_acked >= 4:
            raised.append(time.time())
            acked_at_raise.append(n_acked)
            raise RuntimeError("injected engine failure")
        return acts

    monkeypatch.setattr(EngineCore, "on_venue", on_venue)
    with make_server() as st:
        log = RecLog()
        mon = Monitor(st, ADDR).start()
        with pytest.raises(RuntimeError, match="injected engine failure"):
            await run_bot(st, bot_config(st.url, str(tmp_path)), 30.0, log)
        t_exit = time.time()
        # At once (the dead man's switch would only fire ~6.5 s later): the session itself cancelled everything.
        rec = server_records(st, ADDR)
        mon.stop()
        assert raised, "the engine never had 4 orders acked"
        resting_before = acked_at_raise[0]  # orders of ours acked by the exchange when the engine raised
        assert rec["resting"] == 0, f"{rec['resting']} orders left resting after the crash"
        assert log.first("session_failed") is not None
        assert any(e == "shutdown" for _, _, e, _ in log.events), "engine.shutdown did not run"
        print(json.dumps({"scenario": "engine_exception", "resting_before": resting_before,
                          "resting_after": rec["resting"], "exit_after_s": round(t_exit - raised[0], 2)}))
