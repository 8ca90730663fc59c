"""Risk limits (one section per coin)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RiskParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_position_usd: float = Field(..., gt=0, description="max |position| value in USD")
    daily_loss_limit_usd: float = Field(..., gt=0, description="kill when today's PnL <= -this")
    max_drawdown_usd: float = Field(..., gt=0, description="kill when PnL falls this far below its peak")
    drawdown_min_peak_usd: float = Field(
        1.0, ge=0, description="drawdown arms only once peak >= max(this, 2% of max position)"
    )
    position_limit_slack: float = Field(
        1.5, ge=1, description="kill when position value > max_position_usd * slack"
    )
    max_data_stale_s: float = Field(60.0, gt=0, description="kill when market data is older than this")
    max_rejections_per_min: int = Field(30, ge=1)
    max_errors_per_min: int = Field(20, ge=1)
    flatten_on_kill: bool = False
    allow_min_order_over_cap: bool = Field(
        False, description="quote the exchange minimum order even where it exceeds the per-order cap "
                           "(max_order_fraction x max position); off: such a coin does not quote"
    )
