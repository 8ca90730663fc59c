"""Market sources for the local exchange and the mapping of source time onto the server's (wall) clock.

A source is an iterator of market events in ``ts`` order (a synthetic preset or a replay file). The server plays it
in real time, optionally accelerated: an event ``dt`` seconds after the first one is applied ``dt / speed`` wall
seconds after the start, and is restamped with the wall time at which it is applied (clients judge freshness
against their own clock, so published times must be wall times).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from operator import attrgetter

from hlmm.market.events import AssetCtx, Bbo, BookLevel, BookSnapshot, MarketEvent, RefQuote, Timer, Trade
from hlmm.market.instrument import Instrument, InstrumentError, InstrumentRegistry

_LONG_S = 30 * 86_400.0  # synthetic sources are generated lazily: "forever" costs nothing


class MarketSourceError(ValueError):
    """A market source that cannot be opened (unknown preset, unreadable file, coin not in the registry)."""


History = Callable[[float], tuple[list[tuple[float, float]], list[Trade]]]


@dataclass
class MarketSource:
    """One coin's event stream (``events`` is consumed once). ``history(seconds)`` (synthetic sources) gives the
    (mids, trades) of the ``seconds`` of source time before ``start_ts``, so the exchange can serve candles and
    recent trades from before it started."""

    coin: str
    events: Iterator[MarketEvent]
    label: str
    history: History | None = None
    start_ts: float | None = None


def synthetic_source(preset_name: str, registry: InstrumentRegistry, seed: int = 0, coin: str | None = None,
                     **overrides: object) -> MarketSource:
    """A synthetic preset ('btc', 'hype_quiet', ...), optionally for another coin of the registry."""
    from hlmm.sim.synthetic import SyntheticMarket, SynthParamsError, preset

    try:
        extra = dict(overrides)
        # The server publishes its own activeAssetCtx and pays its configured funding rate
        # (ExchangeConfig.funding_rate_per_hour); a second, synthetic funding stream would contradict it.
        extra.setdefault("ctx_interval_s", 0.0)
        if coin is not None:
            extra["coin"] = coin
        params = preset(preset_name, seed=seed, **extra)
        mkt = SyntheticMarket(params, registry)
    except (SynthParamsError, KeyError, ValueError) as e:
        raise MarketSourceError(f"synthetic preset {preset_name!r}: {e}") from None
    return MarketSource(params.coin, mkt.events(_LONG_S), f"synthetic:{preset_name}:{params.coin}",
                        history=mkt.warm_history, start_ts=mkt.start_ts)


def replay_source(path: str, coin: str, registry: InstrumentRegistry) -> MarketSource:
    """Recorded data (any format ``hlmm.data.replay`` reads) for ``coin``."""
    from hlmm.data.replay import SourceError, open_source

    if coin not in registry:
        raise MarketSourceError(f"replay coin {coin!r} is not listed by the exchange; known: {registry.coins()}")
    try:
        events = open_source(path, coin)
    except (SourceError, OSError, ValueError) as e:
        raise MarketSourceError(f"replay {path}: {e}") from None
    return MarketSource(coin, events, f"replay:{path}:{coin}")


class MarketClock:
    """Merges sources and maps source time to wall time: ``due = wall0 + (ts - ts0) / speed``.

    ``shift`` moves the mapping later (used after a pause so the market resumes where it stopped)."""

    def __init__(self, sources: list[MarketSource], speed: float = 1.0) -> None:
        if not math.isfinite(speed) or speed <= 0:
            raise MarketSourceError(f"speed must be > 0, got {speed!r}")
        self.speed = speed
        self.labels = [s.label for s in sources]
        self._it = heapq.merge(*(s.events for s in sources), key=attrgetter("ts"))
        self._ts0: float | None = None
        self._wall0 = 0.0
        self.n_events = 0

    def start(self, wall_now: float) -> None:
        self._wall0 = wall_now

    def shift(self, seconds: float) -> None:
        self._wall0 += seconds

    def next(self) -> tuple[float, MarketEvent] | None:
        """(wall due time, event) of the next event that matters to the exchange; None when exhausted."""
        for ev in self._it:
            if isinstance(ev, (RefQuote, Timer)):
                continue
            if self._ts0 is None:
                self._ts0 = ev.ts
            self.n_events += 1
            return self._wall0 + (ev.ts - self._ts0) / self.speed, ev
        return None


def scale_prices(ev: MarketEvent, factor: float, inst: Instrument) -> MarketEvent:
    """``ev`` with every price scaled by ``factor`` and put back on the exchange's price grid (bids down, asks
    up, trades to the nearest valid price): the ``jump`` fault, a gap in the market."""

    def side(levels: tuple[BookLevel, ...], is_buy: bool) -> tuple[BookLevel, ...]:
        out: list[BookLevel] = []
        for lv in levels:
            px = inst.round_px(lv.px * factor, is_buy)
            if out and out[-1].px == px:  # two levels rounded onto one price: merge them
                out[-1] = replace(out[-1], sz=out[-1].sz + lv.sz, n=out[-1].n + lv.n)
            else:
                out.append(replace(lv, px=px))
        return tuple(out)

    try:
        if isinstance(ev, BookSnapshot):
            return replace(ev, bids=side(ev.bids, True), asks=side(ev.asks, False))
        if isinstance(ev, Bbo):
            return replace(ev, bid_px=None if ev.bid_px is None else inst.round_bid(ev.bid_px * factor),
                           ask_px=None if ev.ask_px is None else inst.round_ask(ev.ask_px * factor))
        if isinstance(ev, Trade):
            return replace(ev, px=inst.round_px_nearest(ev.px * factor))
        if isinstance(ev, AssetCtx):
            return replace(ev, mark_px=ev.mark_px * factor, oracle_px=ev.oracle_px * factor)
    except InstrumentError:
        return ev  # a price with no valid neighbour: leave the event as it was
    return ev


def retime(ev: MarketEvent, now: float) -> MarketEvent:
    """The event as the exchange sees it now: local and exchange time both ``now``."""
    if hasattr(ev, "ts_exchange"):
        # hasattr does not narrow the union for replace()'s keywords (mypy infers Never): checked at run time.
        return replace(ev, ts=now, ts_exchange=now)  # type: ignore[arg-type]
    return replace(ev, ts=now)
