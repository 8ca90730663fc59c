"""Prometheus metrics: a pure mapping from an EngineCore to plain numbers, and a thin sink that publishes them.

Runners call :meth:`MetricsSink.update_from_engine` about once a second (live, paper), plus the event hooks
(:meth:`MetricsSink.observe_tick_to_order`, :meth:`MetricsSink.ws_reconnect`) where those things happen.
``start_metrics_server(port)`` serves ``/metrics`` on 127.0.0.1 by default. Metric names are the contract with
``deploy/grafana-dashboard.json``: change both together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

PREFIX = "hlmm"
ESTIMATOR_FIELDS = ("sigma", "intensity_a", "kappa", "warmup")
PNL_PARTS = ("total", "realized", "unrealized", "fees", "funding")
TICK_TO_ORDER_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


@dataclass(frozen=True, slots=True)
class EngineMetrics:
    """What one engine looks like at ``ts`` (all plain values; NaN where unknown). Built by :func:`engine_metrics`."""

    coin: str
    ts: float
    position: float
    position_usd: float
    max_position_usd: float
    pnl: dict[str, float]  # PNL_PARTS -> USD
    drawdown_usd: float  # peak_pnl - pnl_total since the start of the UTC day (the kill switch's view)
    mid: float
    fair: float
    quotes: dict[str, int]  # desired quotes per side {"bid": n, "ask": n}
    resting: dict[str, int]  # live tracked orders per side
    quoted_spread_bps: float  # best desired ask - best desired bid, in bps of mid
    market_spread_bps: float
    book_age_s: float  # ts - exchange time of the latest book/bbo (freshness by the book's own clock)
    estimators: dict[str, float]  # ESTIMATOR_FIELDS -> value
    estimator_ready: bool
    warmup_reason: str
    killed: bool
    kill_reason: str | None
    rejections: dict[str, int] = field(default_factory=dict)  # cumulative, by RejectReason value
    fills: dict[str, int] = field(default_factory=dict)  # cumulative {"buy": n, "sell": n}
    fill_volume_usd: float = 0.0  # cumulative
    actions: dict[str, int] = field(default_factory=dict)  # cumulative place/cancel/modify/flatten


def _nan(x: float | None) -> float:
    return math.nan if x is None else float(x)


def engine_metrics(engine: Any, ts: float) -> EngineMetrics:
    """Pure mapping of an EngineCore's read-only views (no I/O, no clock): the number for every metric."""
    m = engine.market
    pf = engine.portfolio
    bb, ba = m.best_bid, m.best_ask
    mid = 0.5 * (bb + ba) if bb is not None and ba is not None else math.nan
    mark = mid if not math.isnan(mid) else (pf.avg_entry or 0.0)
    unreal = pf.unrealized(mark) if pf.position else 0.0
    total = pf.pnl_total(mark)
    ladder = engine.last_ladder
    qb = len(ladder.bids) if ladder is not None else 0
    qa = len(ladder.asks) if ladder is not None else 0
    q_spread = math.nan
    if ladder is not None and ladder.bids and ladder.asks and not math.isnan(mid):
        q_spread = (ladder.asks[0].px - ladder.bids[0].px) / mid * 1e4
    nb = na = 0
    for o in engine.tracker.live(engine.coin):
        if o.is_buy:
            nb += 1
        else:
            na += 1
    est = engine.estimator_state
    ks = engine.kill_switch
    state = ks.state
    rec = engine.recorder
    return EngineMetrics(
        coin=engine.coin,
        ts=ts,
        position=pf.position,
        position_usd=pf.position * mid if not math.isnan(mid) else math.nan,
        max_position_usd=float(engine.cfg.risk.max_position_usd),
        pnl={"total": total, "realized": pf.realized, "unrealized": unreal, "fees": pf.fees, "funding": pf.funding},
        drawdown_usd=max(0.0, state.peak_pnl - total) if state.day else 0.0,
        mid=mid,
        fair=ladder.fair if ladder is not None else math.nan,
        quotes={"bid": qb, "ask": qa},
        resting={"bid": nb, "ask": na},
        quoted_spread_bps=q_spread,
        market_spread_bps=(ba - bb) / mid * 1e4 if not math.isnan(mid) else math.nan,
        book_age_s=ts - m.book_ts_exchange if m.book_ts_exchange is not None else math.nan,
        estimators={k: _nan(getattr(est, k, None)) for k in ESTIMATOR_FIELDS},
        estimator_ready=bool(est is not None and est.ready),
        warmup_reason=est.reason if est is not None else "no estimate yet",
        killed=bool(ks.killed),
        kill_reason=state.reason if ks.killed else None,
        rejections=dict(rec.rejections),
        fills={"buy": rec.n_fills_buy, "sell": rec.n_fills_sell},  # running counts: the series may be bounded
        fill_volume_usd=rec.fill_volume_usd,
        actions=dict(rec.actions),
    )


class MetricsSink:
    """The Prometheus side: a private registry (several sinks can coexist in one process, e.g. in tests)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r, p = self.registry, PREFIX
        self.position = Gauge(f"{p}_position", "position in base units (signed)", ["coin"], registry=r)
        self.position_usd = Gauge(f"{p}_position_usd", "position value at mid (signed)", ["coin"], registry=r)
        self.max_position_usd = Gauge(f"{p}_max_position_usd", "configured max position", ["coin"], registry=r)
        self.pnl = Gauge(f"{p}_pnl_usd", "PnL parts (total = realized + unrealized - fees + funding)",
                         ["coin", "part"], registry=r)  # fmt: skip
        self.drawdown = Gauge(f"{p}_drawdown_usd", "peak PnL today minus PnL now", ["coin"], registry=r)
        self.mid = Gauge(f"{p}_mid", "market mid", ["coin"], registry=r)
        self.fair = Gauge(f"{p}_fair", "strategy fair price", ["coin"], registry=r)
        self.quotes = Gauge(f"{p}_quotes", "desired quotes per side", ["coin", "side"], registry=r)
        self.resting = Gauge(f"{p}_orders_live", "live tracked orders per side", ["coin", "side"], registry=r)
        self.spread = Gauge(f"{p}_spread_bps", "spread in bps of mid (kind=quoted|market)", ["coin", "kind"],
                            registry=r)  # fmt: skip
        self.book_age = Gauge(f"{p}_book_age_seconds", "local time minus the book's exchange time", ["coin"],
                              registry=r)  # fmt: skip
        self.estimator = Gauge(f"{p}_estimator", "estimator values (sigma per sqrt s, A per s, kappa, warmup 0..1)",
                               ["coin", "name"], registry=r)  # fmt: skip
        self.estimator_ready = Gauge(f"{p}_estimator_ready", "1 when the strategy may quote", ["coin"], registry=r)
        self.killed = Gauge(f"{p}_killed", "1 when the kill switch is latched", ["coin"], registry=r)
        self.kill_reason = Gauge(f"{p}_kill_reason", "1 for the latched kill reason", ["coin", "reason"], registry=r)
        self.rejections = Counter(f"{p}_rejections", "order rejections by reason", ["coin", "reason"], registry=r)
        self.fills = Counter(f"{p}_fills", "our fills by side", ["coin", "side"], registry=r)
        self.fill_volume = Counter(f"{p}_fill_volume_usd", "notional filled", ["coin"], registry=r)
        self.actions = Counter(f"{p}_actions", "actions sent by kind", ["coin", "kind"], registry=r)
        self.tick_to_order = Histogram(f"{p}_tick_to_order_seconds", "market event in -> signed order ready",
                                       ["coin"], buckets=TICK_TO_ORDER_BUCKETS, registry=r)  # fmt: skip
        self.budget_left = Gauge(f"{p}_request_budget_left", "exchange request budget left (cap - used)",
                                 ["account"], registry=r)  # fmt: skip
        self.ws_reconnects = Counter(f"{p}_ws_reconnects", "websocket reconnects", ["feed"], registry=r)
        self.last_update = Gauge(f"{p}_last_update_timestamp_seconds", "engine time of the last update", ["coin"],
                                 registry=r)  # fmt: skip
        self._seen: dict[tuple[str, str, str], float] = {}  # cumulative values already counted
        self._kill_labels: dict[str, str] = {}

    def _inc_to(self, counter: Counter, key: tuple[str, str, str], total: float, **labels: str) -> None:
        # Engine counters are cumulative: publish the increase since the last update (never negative: an engine
        # restarted with fresh counters starts counting again from its new total).
        prev = self._seen.get(key, 0.0)
        if total < prev:
            prev = 0.0
        if total > prev:
            counter.labels(**labels).inc(total - prev)
        self._seen[key] = total

    def update(self, s: EngineMetrics) -> None:
        """Publish one snapshot (thin: no computation beyond counter deltas)."""
        c = s.coin
        self.position.labels(c).set(s.position)
        self.position_usd.labels(c).set(s.position_usd)
        self.max_position_usd.labels(c).set(s.max_position_usd)
        for part, v in s.pnl.items():
            self.pnl.labels(c, part).set(v)
        self.drawdown.labels(c).set(s.drawdown_usd)
        self.mid.labels(c).set(s.mid)
        self.fair.labels(c).set(s.fair)
        for side in ("bid", "ask"):
            self.quotes.labels(c, side).set(s.quotes.get(side, 0))
            self.resting.labels(c, side).set(s.resting.get(side, 0))
        self.spread.labels(c, "quoted").set(s.quoted_spread_bps)
        self.spread.labels(c, "market").set(s.market_spread_bps)
        self.book_age.labels(c).set(s.book_age_s)
        for name, v in s.estimators.items():
            self.estimator.labels(c, name).set(v)
        self.estimator_ready.labels(c).set(1.0 if s.estimator_ready else 0.0)
        self.killed.labels(c).set(1.0 if s.killed else 0.0)
        old = self._kill_labels.pop(c, None)
        if old is not None and old != s.kill_reason:
            self.kill_reason.remove(c, old)
        if s.kill_reason is not None:
            self.kill_reason.labels(c, s.kill_reason).set(1.0)
            self._kill_labels[c] = s.kill_reason
        for reason, n in s.rejections.items():
            self._inc_to(self.rejections, ("rej", c, reason), n, coin=c, reason=reason)
        for side, n in s.fills.items():
            self._inc_to(self.fills, ("fill", c, side), n, coin=c, side=side)
        self._inc_to(self.fill_volume, ("vol", c, ""), s.fill_volume_usd, coin=c)
        for kind, n in s.actions.items():
            self._inc_to(self.actions, ("act", c, kind), n, coin=c, kind=kind)
        self.last_update.labels(c).set(s.ts)

    def update_from_engine(self, engine: Any, ts: float, budget_left: float | None = None,
                           account: str = "main") -> EngineMetrics:  # fmt: skip
        """The runner's once-a-second hook: map the engine and publish. Returns the snapshot."""
        s = engine_metrics(engine, ts)
        self.update(s)
        if budget_left is not None:
            self.set_budget_left(budget_left, account)
        return s

    def observe_tick_to_order(self, coin: str, seconds: float) -> None:
        self.tick_to_order.labels(coin).observe(seconds)

    def set_budget_left(self, left: float, account: str = "main") -> None:
        self.budget_left.labels(account).set(left)

    def ws_reconnect(self, feed: str) -> None:
        self.ws_reconnects.labels(feed).inc()

    def exposition(self) -> bytes:
        """The text a scrape of /metrics returns."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


def start_metrics_server(
    port: int, sink: MetricsSink | None = None, addr: str = "127.0.0.1"
) -> tuple[MetricsSink, Any]:
    """Serve ``/metrics`` for ``sink`` (a new one by default) on ``addr:port`` in a daemon thread (port 0 picks a
    free port: read it from ``server.server_port``). Returns (sink, server); ``server.shutdown()`` stops it."""
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be in 0..65535, got {port}")
    sink = sink if sink is not None else MetricsSink()
    server, _thread = start_http_server(port, addr=addr, registry=sink.registry)
    return sink, server
