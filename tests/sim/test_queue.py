"""Queue-position models: unit checks and properties (the prob model never fills earlier than the tape allows,
and the risk-averse model is never ahead of it)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlmm.market.events import BookLevel, BookSnapshot, Trade
from hlmm.market.instrument import default_registry
from hlmm.sim.exchange import SimExchange
from hlmm.sim.latency import LatencyModel
from hlmm.sim.queue import ProbQueue, QueueModelError, RiskAverseQueue, depth_update, make_queue_model
from hlmm.venue.base import Fill, PlaceOrder, Tif

COIN = "HYPE"
PX = 29.99


def test_model_names() -> None:
    assert isinstance(make_queue_model("risk_averse"), RiskAverseQueue)
    assert make_queue_model("prob") == ProbQueue()
    assert make_queue_model("prob_log").kind == "log"  # type: ignore[attr-defined]
    assert make_queue_model("prob_power3").n == 3.0  # type: ignore[attr-defined]
    custom = ProbQueue(n=1.5)
    assert make_queue_model(custom) is custom
    for bad in ("fifo", "prob_power", "prob_power-1"):
        with pytest.raises(QueueModelError):
            make_queue_model(bad)
    with pytest.raises(QueueModelError):
        ProbQueue(kind="cubic")  # type: ignore[arg-type]


def test_prob_front_shape() -> None:
    q = ProbQueue()
    assert q.prob_front(0.0, 5.0) == 0.0
    assert q.prob_front(5.0, 0.0) == 1.0
    assert q.prob_front(3.0, 3.0) == 0.5
    assert q.prob_front(0.0, 0.0) == 1.0
    assert q.prob_front(4.0, 1.0) > ProbQueue(n=1.0).prob_front(4.0, 1.0) > 0.5


def test_depth_update_rules() -> None:
    ra, pq = RiskAverseQueue(), ProbQueue()
    assert depth_update(ra, None, None, 0.0, 7.0) == 7.0  # unknown: everybody visible is ahead
    assert depth_update(ra, 2.0, 5.0, 0.0, 9.0) == 2.0  # growth joins behind us
    assert depth_update(ra, 4.0, 5.0, 0.0, 3.0) == 3.0  # never more ahead than is visible
    # a decrease fully explained by trades does not advance anyone
    assert depth_update(pq, 3.0, 5.0, 2.0, 3.0) == 3.0
    # the back cannot lose more than it holds: the excess comes from the front
    assert ProbQueue(n=2.0).on_decrease(1.0, 4.0, 4.5) == pytest.approx(0.5)
    assert depth_update(ProbQueue(n=1.0), 4.0, 5.0, 0.0, 1.0) == pytest.approx(4.0 - 0.8 * 4.0)


sizes = st.floats(0.0, 50.0, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(ahead=sizes, extra=sizes, traded=sizes, new=sizes, n=st.sampled_from([1.0, 2.0, 3.0]))
def test_depth_update_properties(ahead: float, extra: float, traded: float, new: float, n: float) -> None:
    prev = ahead + extra + traded
    for log in (False, True):
        model = ProbQueue(kind="log" if log else "power", n=n)
        p = depth_update(model, ahead, prev, traded, new)
        r = depth_update(RiskAverseQueue(), ahead, prev, traded, new)
        assert 0.0 <= p <= r <= ahead + 1e-9  # never moves us back; never stricter than risk-averse
        assert r <= new + 1e-9 and p <= new + 1e-9


# ---- exchange-level property over random tapes ------------------------------------------------------------
step = st.one_of(
    st.tuples(st.just("book"), st.integers(0, 40)),  # visible size at our price, in units of 0.5
    st.tuples(st.just("trade"), st.integers(1, 12)),  # sell trade at our price
)


def _replay(queue: str, initial: int, steps: list[tuple[str, int]]) -> tuple[list[float], list[float]]:
    ex = SimExchange(default_registry(), latency=LatencyModel(0.0, 0.0), queue=queue)
    ex.on_market(BookSnapshot(COIN, 1.0, 1.0, (BookLevel(PX, initial * 0.5),), (BookLevel(30.01, 5.0),)))
    ex.submit([PlaceOrder(COIN, "0x" + "a" * 32, True, PX, 3.0, Tif.ALO)], 1.0)
    ex.advance_to(1.0)
    ex.pop_events(1.0)
    filled, aheads = [], []
    total = 0.0
    for i, (kind, v) in enumerate(steps):
        t = 2.0 + i
        if kind == "book":
            ex.on_market(BookSnapshot(COIN, t, t, (BookLevel(PX, v * 0.5),), (BookLevel(30.01, 5.0),)))
        else:
            ex.on_market(Trade(COIN, t, t, PX, v * 0.5, "A", i + 1))
        total += sum(e.sz for e in ex.pop_events(t) if isinstance(e, Fill))
        filled.append(total)
        o = ex.order(1)
        aheads.append(o.ahead if o is not None and o.is_open and o.ahead is not None else 0.0)
    return filled, aheads


@settings(max_examples=60, deadline=None)
@given(initial=st.integers(0, 40), steps=st.lists(step, min_size=1, max_size=25))
def test_prob_fills_no_earlier_than_the_tape_allows(initial: int, steps: list[tuple[str, int]]) -> None:
    f_prob, a_prob = _replay("prob", initial, steps)
    f_ra, a_ra = _replay("risk_averse", initial, steps)
    traded = 0.0
    for i, (kind, v) in enumerate(steps):
        traded += v * 0.5 if kind == "trade" else 0.0
        # only trades at our price fill us, never more than traded there
        assert f_prob[i] <= traded + 1e-9 and f_ra[i] <= traded + 1e-9
        # the risk-averse model is the conservative bound: it is never ahead of the prob model
        assert f_ra[i] <= f_prob[i] + 1e-9
        assert a_prob[i] <= a_ra[i] + 1e-9
    # with no cancellation information (sizes only grow), both models agree exactly
    if all(k == "trade" for k, _ in steps):
        assert f_prob == f_ra
