"""Estimator priors and warm-up settings (one section per coin)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class EstimatorParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sigma_prior: float = Field(0.0004, gt=0, description="prior volatility of log mid, per sqrt(second)")
    vol_halflife_s: float = Field(60.0, gt=0)
    intensity_a_prior: float = Field(1.0, gt=0, description="prior trade arrival rate at the mid, per second")
    intensity_kappa_prior: float = Field(
        2000.0, gt=0, description="prior decay of arrival rate per unit relative distance from mid"
    )
    intensity_window_s: float = Field(300.0, gt=0)
    warmup_timeout_s: float = Field(30.0, gt=0, description="quote on blended priors after this long")
    warmup_min_samples: int = Field(30, ge=1)
