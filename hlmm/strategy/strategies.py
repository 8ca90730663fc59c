"""The built-in strategies (GLFT ladder, Avellaneda–Stoikov, fixed grid) and the ``strategy.kind`` resolver."""

from __future__ import annotations

import importlib
import importlib.util
import math
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from hlmm.market.instrument import Instrument
from hlmm.strategy import ladder as _ladder
from hlmm.strategy.avellaneda import liquidity_spread
from hlmm.strategy.base import QuoteContext, make_ladder, no_quotes
from hlmm.strategy.fair import fair_price
from hlmm.strategy.params import AvellanedaParams, GridParams, StrategyParams
from hlmm.strategy.types import DesiredLadder


class StrategyConfigError(ValueError):
    """``strategy.kind`` cannot be resolved, or its parameters are invalid (message names the field path)."""


class GlftStrategy:
    """The GLFT ladder (:func:`hlmm.strategy.ladder.compute_ladder`) with its per-instrument caches."""

    name = "glft"

    def __init__(self, params: StrategyParams, inst: Instrument) -> None:
        self.params = params
        self.cache = _ladder.LadderCache(inst)

    def quote(self, ctx: QuoteContext) -> DesiredLadder:
        return _ladder.compute_ladder(
            ctx.inst, self.params, ctx.max_position_usd, ctx.market, ctx.est, ctx.position, ctx.ts,
            ctx.ref_adjust_bps, ctx.reduce_only, cache=self.cache,
        )


class AvellanedaStrategy:
    """Avellaneda–Stoikov (2008) in bps of the mid, inventory q in units of max position, a rolling horizon:

    reservation = mid * (1 - q gamma sigma_bp^2 tau / 1e4); half spread = (gamma sigma_bp^2 tau
    + (2/gamma) ln(1 + gamma/k_bp)) / 2, clamped; ``levels`` levels ``level_spacing_bps`` apart, each
    ``size_fraction`` of max position. Caps, room and the BBO guard are the OrderGuard's job."""

    name = "avellaneda"

    def __init__(self, params: AvellanedaParams, inst: Instrument) -> None:
        self.p = params

    def quote(self, ctx: QuoteContext) -> DesiredLadder:
        p, est, mid = self.p, ctx.est, ctx.market.mid
        if mid is None or not mid > 0:
            return no_quotes(ctx, "no quotes: no mid")
        if not est.ready:
            return no_quotes(ctx, f"no quotes: estimators not ready ({est.reason})", mid)
        sigma_bp, k_bp = est.sigma * 1e4, est.kappa / 1e4
        if not (math.isfinite(sigma_bp) and sigma_bp >= 0 and math.isfinite(k_bp) and k_bp > 0):
            return no_quotes(ctx, f"no quotes: invalid estimates sigma={est.sigma} kappa={est.kappa}", mid)
        eff = ctx.max_position_usd / mid
        q = ctx.position / eff if eff > 0 else 0.0
        inv = p.gamma * sigma_bp**2 * p.horizon_s
        hs = 0.5 * (inv + liquidity_spread(gamma=p.gamma, k=k_bp))
        hs = min(max(hs, p.min_half_spread_bps), p.max_half_spread_bps)
        shift = max(-p.max_half_spread_bps, min(p.max_half_spread_bps, q * inv))  # reservation offset, bps
        r = mid * (1.0 - shift / 1e4)
        sz = p.size_fraction * eff
        why = f"as: r={r:.8g} (q={q:+.3f} shift={shift:.3f}bp) hs={hs:.3f}bp"
        depth = [hs + i * p.level_spacing_bps for i in range(p.levels)]
        lvl = [f"px: {why} depth {d:.3f}bp; sz: {p.size_fraction:g} x max" for d in depth]
        bids = [(r * (1 - d / 1e4), sz, w) for d, w in zip(depth, lvl, strict=True)]
        asks = [(r * (1 + d / 1e4), sz, w) for d, w in zip(depth, lvl, strict=True)]
        return make_ladder(ctx, mid, bids, asks, reason=f"{why} sigma={est.sigma:.3g} kappa={est.kappa:.4g}")


class GridStrategy:
    """The minimum a strategy needs: fixed offsets from the mid, a fixed USD size per level."""

    name = "grid"

    def __init__(self, params: GridParams, inst: Instrument) -> None:
        self.p = params

    def quote(self, ctx: QuoteContext) -> DesiredLadder:
        mid = ctx.market.mid
        if mid is None or not mid > 0:
            return no_quotes(ctx, "no quotes: no mid")
        sz = self.p.size_usd / mid
        usd = self.p.size_usd
        bids = [(mid * (1 - o / 1e4), sz, f"px: grid mid-{o:g}bp; sz: {usd:g} USD") for o in self.p.offsets_bps]
        asks = [(mid * (1 + o / 1e4), sz, f"px: grid mid+{o:g}bp; sz: {usd:g} USD") for o in self.p.offsets_bps]
        return make_ladder(ctx, mid, bids, asks, reason=f"grid mid={mid:.8g}")


BUILTIN: dict[str, type] = {"glft": GlftStrategy, "avellaneda": AvellanedaStrategy, "grid": GridStrategy}


def resolve_class(kind: str) -> type:
    """The strategy class for ``kind`` (a built-in name or ``package.module:Class``, imported here)."""
    if kind in BUILTIN:
        return BUILTIN[kind]
    mod_name, _, cls_name = kind.rpartition(":")
    try:
        if mod_name.endswith(".py"):  # a file path (relative to the working directory)
            path = Path(mod_name)
            if not path.is_file():
                raise FileNotFoundError(f"no file {path}")
            spec = importlib.util.spec_from_file_location(f"hlmm_user_strategy_{path.stem}", path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load {path}")
            mod = sys.modules.get(spec.name)
            if mod is None or getattr(mod, "__file__", None) != str(path):
                mod = importlib.util.module_from_spec(spec)
                sys.modules[spec.name] = mod
                spec.loader.exec_module(mod)
        else:
            mod = importlib.import_module(mod_name)
    except Exception as e:  # ImportError, or the module raised while importing
        raise StrategyConfigError(f"strategy.kind = {kind!r}: cannot import module {mod_name!r}: "
                                  f"{type(e).__name__}: {e}") from None
    cls = getattr(mod, cls_name, None)
    if not isinstance(cls, type):
        raise StrategyConfigError(f"strategy.kind = {kind!r}: module {mod_name!r} has no class {cls_name!r}")
    if not callable(getattr(cls, "quote", None)):
        raise StrategyConfigError(f"strategy.kind = {kind!r}: {cls_name} has no quote(ctx) method")
    return cls


def strategy_params(params: StrategyParams, cls: type | None = None) -> Any:
    """The validated parameters the strategy class is constructed with."""
    kind = params.kind
    if kind == "glft":
        return params
    if kind in ("avellaneda", "grid"):
        return getattr(params, kind)
    cls = cls or resolve_class(kind)
    model = getattr(cls, "Params", None)
    if isinstance(model, type) and issubclass(model, BaseModel):
        try:
            return model.model_validate(params.custom)
        except ValidationError as e:
            errs = "; ".join(f"strategy.custom.{'.'.join(str(x) for x in er['loc'])}: {er['msg']}"
                             for er in e.errors())
            raise StrategyConfigError(f"strategy.kind = {kind!r}: {errs}") from None
    return dict(params.custom)


def check_strategy(params: StrategyParams) -> None:
    """Config-load check: the class imports and its parameters validate (raises StrategyConfigError)."""
    cls = resolve_class(params.kind)
    strategy_params(params, cls)


def make_strategy(params: StrategyParams, inst: Instrument) -> Any:
    """A new strategy instance for one coin (each instance owns its caches)."""
    cls = resolve_class(params.kind)
    return cls(strategy_params(params, cls), inst)


__all__ = ["AvellanedaStrategy", "GlftStrategy", "GridStrategy", "StrategyConfigError", "check_strategy",
           "fair_price", "make_strategy", "resolve_class", "strategy_params"]
