"""Strategy parameters (one section per coin in the config file).

``kind`` selects the quote strategy: ``"glft"`` (default; its keys are the top-level keys of this section),
``"avellaneda"`` (keys under ``[...strategy.avellaneda]``), ``"grid"`` (``[...strategy.grid]``) or a user class
``"package.module:Class"`` (keys under ``[...strategy.custom]``, validated by the class's ``Params`` model when it
has one). The shared keys (fair price, reference signal, staleness, ``max_order_fraction``) stay top-level.
"""

from __future__ import annotations

import logging
import re
import warnings
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

BUILTIN_KINDS = ("glft", "avellaneda", "grid")
_CLASS_RE = re.compile(r"^([A-Za-z_][\w.]*|[^:]+\.py):[A-Za-z_]\w*$")  # package.module:Class or path/file.py:Class
_log = logging.getLogger("hlmm.config")


class GridParams(BaseModel):
    """The fixed-offset grid: each level at a fixed distance from the mid, a fixed USD size."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    offsets_bps: tuple[float, ...] = Field((2.0, 5.0, 10.0), min_length=1, max_length=50,
                                           description="distance of each level from the mid, bps")
    size_usd: float = Field(15.0, gt=0, description="size of each order in USD")

    @field_validator("offsets_bps")
    @classmethod
    def _positive(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if any(not x > 0 for x in v):
            raise ValueError("every offset must be > 0 bps")
        return v


class AvellanedaParams(BaseModel):
    """Avellaneda–Stoikov (2008) quotes in bps of the mid (see :mod:`hlmm.strategy.strategies`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gamma: float = Field(0.01, gt=0, description="risk aversion per (bp x max position)")
    horizon_s: float = Field(60.0, gt=0, description="fixed (rolling) horizon T - t, seconds")
    levels: int = Field(3, ge=1, le=50)
    level_spacing_bps: float = Field(5.0, gt=0)
    size_fraction: float = Field(0.1, gt=0, le=1, description="size per level as a fraction of max position")
    min_half_spread_bps: float = Field(2.0, ge=0)
    max_half_spread_bps: float = Field(200.0, gt=0)


class StrategyParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str = Field("glft", description="glft | avellaneda | grid | package.module:Class | path/file.py:Class")
    levels: int = Field(5, ge=1, le=50, description="ladder levels per side")
    gamma: float = Field(0.1, gt=0, description="GLFT risk aversion (per unit of inventory in max-position units)")
    level_spacing_bps: float = Field(5.0, gt=0, description="distance between ladder levels, bps of fair price")
    size_profile: Literal["flat", "linear", "geometric"] = "flat"
    size_decay: float = Field(0.8, gt=0, le=1, description="ratio between consecutive levels (geometric)")
    min_half_spread_bps: float = Field(
        2.0, ge=0, description="floor on the half spread; the default covers the base-tier maker fee (1.5 bp)"
    )
    max_half_spread_bps: float = Field(200.0, gt=0, description="cap on the half spread")
    use_microprice: bool = False
    ref_weight: float = Field(0.0, ge=0, le=1, description="weight of the reference-feed lead-lag signal")
    ref_max_adjust_bps: float = Field(5.0, ge=0, description="bound on the reference adjustment of fair price")
    ref_halflife_s: float = Field(2.0, gt=0, description="decay of the reference lead-lag signal")
    stale_book_s: float = Field(5.0, gt=0, description="book older than this (exchange time) widens spreads")
    stale_widen_bps: float = Field(10.0, ge=0, description="extra half spread when the book is stale")
    trade_through_after_s: float = Field(
        1.0, ge=0, description="a trade printed beyond the touch this long (exchange time) after the latest book "
                               "marks the book stale and moves the fair price to it (sooner: a sweep that the "
                               "next book will show)",
    )
    stale_policy: Literal["auto", "widen", "pull"] = Field(
        "auto", description="what a stale book (older than stale_book_s, or a trade printed through it) does to "
                            "quotes: widen by stale_widen_bps, or pull them all; auto = pull for HIP-3 coins "
                            "(dex:COIN, books that go silent), widen for the others. Enforced by the OrderGuard",
    )
    max_order_fraction: float = Field(
        0.25, gt=0, le=1,
        description="per-order cap as a fraction of max position (hard max 0.25); enforced by the OrderGuard "
                    "for every strategy. Deprecated alias: min_order_fraction",
    )
    avellaneda: AvellanedaParams = AvellanedaParams()
    grid: GridParams = GridParams()
    custom: dict[str, Any] = Field(default_factory=dict, description="parameters of a module:Class strategy")

    @model_validator(mode="before")
    @classmethod
    def _deprecated_alias(cls, data: Any) -> Any:
        if isinstance(data, dict) and "min_order_fraction" in data:
            if "max_order_fraction" in data:
                raise ValueError("min_order_fraction is the deprecated name of max_order_fraction: set only one")
            data = dict(data)
            data["max_order_fraction"] = data.pop("min_order_fraction")
            msg = "strategy.min_order_fraction is deprecated (it is the per-order cap): use max_order_fraction"
            _log.warning(msg)
            warnings.warn(msg, FutureWarning, stacklevel=2)
        return data

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        v = v.strip()
        if v not in BUILTIN_KINDS and not _CLASS_RE.match(v):
            raise ValueError(f"must be one of {', '.join(BUILTIN_KINDS)}, 'package.module:Class' or "
                             f"'path/file.py:Class', got {v!r}")
        return v

    @property
    def min_order_fraction(self) -> float:
        """Deprecated name of :attr:`max_order_fraction`."""
        return self.max_order_fraction
