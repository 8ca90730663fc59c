"""Strategy parameters (one section per coin in the config file)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class StrategyParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

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
    min_order_fraction: float = Field(
        0.25, gt=0, le=1, description="per-order cap as a fraction of max position (hard max 0.25)"
    )
