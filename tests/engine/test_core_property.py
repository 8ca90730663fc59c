"""Engine-level invariants over random markets (the incident's numbers: HYPE at ~32.95, max position 50 USD)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hlmm.engine.core import EngineCore
from hlmm.venue.base import Fill, ModifyOrder, PlaceOrder, Tif

from .helpers import REG, T0, Driver, book, coin_cfg, trade

COIN = "hyna:HYPE"
INST = REG.get(COIN)
MAX_USD = 50.0

step_st = st.tuples(
    st.integers(min_value=-3, max_value=3),  # mid move in ticks
    st.sampled_from(["none", "none", "B", "A"]),  # trade aggressor
    st.integers(min_value=1, max_value=200),  # trade size in lots
    st.integers(min_value=0, max_value=40),  # trade distance from mid in ticks
)


@settings(max_examples=40, deadline=None)
@given(st.lists(step_st, min_size=20, max_size=120), st.sampled_from([0.05, 0.3, 1.5]))
def test_position_and_order_caps_hold_on_random_markets(steps, feed_lat):
    eng = EngineCore(COIN, INST, coin_cfg(max_pos=MAX_USD, warmup_timeout_s=2.0), T0)
    d = Driver(eng)
    tick = 0.001
    mid_ticks = 32_950
    evs = []
    tid = 1
    for k, (dm, side, lots, dist) in enumerate(steps):
        mid_ticks += dm
        t = T0 + 0.5 * k
        bid, ask = (mid_ticks - 7) * tick, (mid_ticks + 8) * tick
        evs.append(book(COIN, t, round(bid, 3), round(ask, 3), sz=5.0, lat=feed_lat, tick=tick))
        if side != "none":
            px = (mid_ticks + dist) * tick if side == "B" else (mid_ticks - dist) * tick
            evs.append(trade(COIN, t + 0.2, round(px, 3), lots / 100, side, tid, lat=feed_lat))
            tid += 1
    worst = [0.0]

    def check(_t: float) -> None:
        pos = abs(eng.portfolio.position)
        fair = eng.market.mid or 32.95
        eff = INST.floor_size(MAX_USD / fair)
        cap = max(INST.min_size_at(fair), 0.25 * eff)
        worst[0] = max(worst[0], pos / (eff + cap))
        assert pos <= eff + cap + 1e-9
        for o in d.ex.open_orders(COIN):
            assert o.sz <= cap + 1e-9

    d.on_tick = check
    d.run(evs, until=T0 + 0.5 * len(steps) + 1)
    d.drain()
    check(d.now)
    fills = [v for v in d.venue_events if isinstance(v, Fill)]
    assert eng.portfolio.n_fills == len({(f.tid, f.oid) for f in fills})
    assert abs(eng.portfolio.position - d.ex.snapshot(COIN, d.now).position) < 1e-9
    for _, a in d.sent:
        p = a.new if isinstance(a, ModifyOrder) else a
        if isinstance(p, PlaceOrder) and p.tif == Tif.ALO:
            assert INST.is_valid_price(p.px) and INST.is_valid_size(p.sz) and INST.meets_min_value(p.px, p.sz)


def _sparse_far_trades_stream() -> list:
    evs = [book(COIN, T0 + 0.5 * k, 32.943, 32.958, sz=5.0, tick=0.001) for k in range(20)]
    evs.append(trade(COIN, T0 + 9.2, 32.984, 0.01, "B", 1))
    evs.append(trade(COIN, T0 + 9.7, 32.917, 0.01, "A", 2))
    evs += [book(COIN, T0 + 10 + 0.5 * k, 32.943, 32.958, sz=5.0, tick=0.001) for k in range(10)]
    return evs


def test_cycle_failure_is_loud_and_fail_safe():
    """Whatever breaks inside a quote cycle, the engine pulls its quotes, counts an error and carries on."""
    eng = EngineCore(COIN, INST, coin_cfg(max_pos=MAX_USD, warmup_timeout_s=2.0), T0)
    d = Driver(eng)
    d.run([book(COIN, T0 + 0.5 * k, 32.943, 32.958, sz=5.0, tick=0.001) for k in range(10)], until=T0 + 5)
    d.drain(1.0)
    assert d.ex.open_orders(COIN)

    def boom(ts: float):
        raise FloatingPointError("estimator exploded")

    eng.estimators.state = boom  # type: ignore[method-assign]
    acts = eng.on_timer(d.now + 6.0)
    assert eng.n_cycle_errors == 1
    assert acts and all(a.reason == "cycle error" for a in acts)
    assert {a.cloid for a in acts} == {o.cloid for o in eng.tracker.live(COIN)}


def test_no_cycle_errors_on_sparse_far_trades():
    eng = EngineCore(COIN, INST, coin_cfg(max_pos=MAX_USD, warmup_timeout_s=2.0), T0)
    d = Driver(eng)
    d.run(_sparse_far_trades_stream(), until=T0 + 16)
    assert eng.n_cycle_errors == 0
