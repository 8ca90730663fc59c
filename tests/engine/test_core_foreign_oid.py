"""EngineCore: foreign orders without a cloid are cancelled by oid; the reference signal follows ``ref_symbol``."""

from __future__ import annotations

import pytest

from hlmm.config import CoinConfig, ReferenceParams
from hlmm.engine.core import EngineCore
from hlmm.strategy.params import StrategyParams
from hlmm.venue.base import AccountSnapshot, CancelOrder, OpenOrder, OrderCancelled

from .helpers import REG, T0, book, coin_cfg

BTC = REG.get("BTC")


class _Log:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []

    def _rec(self, event: str, **kw: object) -> None:
        self.events.append((event, kw))

    debug = info = warning = error = _rec

    def bind(self, **kw: object) -> _Log:
        return self


@pytest.mark.parametrize("policy", ["cancel", "adopt"])
def test_foreign_order_without_cloid_is_cancelled_by_oid(policy: str) -> None:
    log = _Log()
    eng = EngineCore("BTC", BTC, coin_cfg(warmup_timeout_s=100.0), T0, log=log, foreign_orders=policy)  # type: ignore[arg-type]
    eng.on_market(book("BTC", T0, 99_999.0, 100_001.0))
    foreign = OpenOrder(coin="BTC", cloid=None, oid=77, is_buy=True, px=90_000.0, sz=0.01)
    acts = eng.sync(AccountSnapshot(ts=T0 + 0.1, coin="BTC", position=0.0, entry_px=0.0, open_orders=(foreign,)))
    cancels = [a for a in acts if isinstance(a, CancelOrder)]
    assert len(cancels) == 1
    c = cancels[0]
    assert c.oid == 77 and c.reason == "foreign order" and c.cloid.startswith("0x") and len(c.cloid) == 34
    assert not eng.kill_switch.killed and eng.n_foreign_by_oid == 1
    assert eng.tracker.exposure(True) == pytest.approx(0.01)  # counted until the venue confirms the cancel
    assert any(name == "foreign_order_without_cloid" for name, _ in log.events)
    # A second sync still showing it does not send a second cancel while the first is pending...
    again = eng.sync(AccountSnapshot(ts=T0 + 0.2, coin="BTC", position=0.0, entry_px=0.0, open_orders=(foreign,)))
    assert not [a for a in again if isinstance(a, CancelOrder)]
    # ...an unanswered cancel is retried, still by oid...
    retry = [a for a in eng.on_timer(T0 + 10.5) if isinstance(a, CancelOrder)]
    assert [(a.cloid, a.oid) for a in retry] == [(c.cloid, 77)] and retry[0].reason.startswith("cancel retry")
    # ...and the venue's confirmation (echoing the placeholder) ends it.
    eng.on_venue(OrderCancelled(T0 + 11.0, "BTC", c.cloid, 77, "requested"))
    assert eng.tracker.exposure(True) == pytest.approx(0.0)


def test_foreign_order_without_cloid_refuse_policy_kills_and_cancels() -> None:
    eng = EngineCore("BTC", BTC, coin_cfg(), T0, foreign_orders="refuse")
    foreign = OpenOrder(coin="BTC", cloid=None, oid=5, is_buy=False, px=110_000.0, sz=0.01)
    acts = eng.sync(AccountSnapshot(ts=T0, coin="BTC", position=0.0, entry_px=0.0, open_orders=(foreign,)))
    assert eng.kill_switch.killed
    assert [(a.oid, a.reason) for a in acts if isinstance(a, CancelOrder)] == [(5, "foreign order")]


def _ref_cfg(symbol: str | None) -> CoinConfig:
    base = coin_cfg()
    return base.model_copy(update={"strategy": StrategyParams(ref_weight=0.5),
                                   "reference": ReferenceParams(binance_symbol=symbol)})


def test_ref_symbol_argument_overrides_the_config() -> None:
    # Config without a symbol: the core resolves it the same way in every mode (issue 10 item 4) - BTC maps to
    # btcusdt through the table of real equivalents, so backtest and paper get the signal live has.
    auto = EngineCore("BTC", BTC, _ref_cfg(None), T0)
    assert auto.ref_signal is not None and auto.ref_symbol == "btcusdt"
    off_cfg = EngineCore("BTC", BTC, _ref_cfg("off"), T0)  # "off" in the config disables it
    assert off_cfg.ref_signal is None and off_cfg.ref_symbol is None
    on = EngineCore("BTC", BTC, _ref_cfg("off"), T0, ref_symbol="btcusdt")  # a runner's resolution overrides
    assert on.ref_signal is not None and on.ref_symbol == "btcusdt"
    off = EngineCore("BTC", BTC, _ref_cfg("btcusdt"), T0, ref_symbol="off")  # "off" disables it
    assert off.ref_signal is None and off.ref_symbol is None
    cfg_on = EngineCore("BTC", BTC, _ref_cfg("btcusdt"), T0)  # None: the config decides
    assert cfg_on.ref_signal is not None and cfg_on.ref_symbol == "btcusdt"
    no_weight = EngineCore("BTC", BTC, coin_cfg(), T0, ref_symbol="btcusdt")  # ref_weight 0: never used
    assert no_weight.ref_signal is None


def test_reference_resolved_alike_for_backtest_paper_and_live_engines() -> None:
    """Issue 10 item 4: the backtest/paper engine builder and the live runner end up with the same symbol."""
    from hlmm.config import load_config_dict
    from hlmm.engine.runner import build_engine
    from hlmm.market.instrument import default_registry
    from hlmm.market.reference_symbols import resolve_binance_symbol

    raw = {"coins": {c: {"risk": {"max_position_usd": 100, "daily_loss_limit_usd": 10, "max_drawdown_usd": 5},
                         "strategy": {"ref_weight": 0.5}} for c in ("BTC", "hyna:HYPE")}}
    cfg = load_config_dict(raw)
    reg = default_registry()
    for coin, want in (("BTC", "btcusdt"), ("hyna:HYPE", None)):
        eng = build_engine(cfg, coin, reg, T0, None, None)
        live_sym = resolve_binance_symbol(coin, cfg.coin(coin))[0]  # what live_runner resolves
        assert eng.ref_symbol == live_sym == want
