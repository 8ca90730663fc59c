"""Estimator priors and warm-up settings (one section per coin)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class EstimatorParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sigma_prior: float = Field(0.0004, gt=0, description="prior volatility of log mid, per sqrt(second)")
    vol_halflife_s: float = Field(60.0, gt=0)
    vol_min_dt_s: float = Field(
        1.0,
        ge=0,
        description="returns are taken over at least this many seconds (tick-level mid returns on a large-tick "
        "book are mean-reverting/trending and misstate vol at quoting horizons); 0 = every update",
    )
    vol_max_gap_s: float = Field(
        30.0, gt=0, description="a mid gap longer than this resets the reference point instead of making a return"
    )
    intensity_a_prior: float = Field(1.0, gt=0, description="prior trade arrival rate at the mid, per second")
    intensity_kappa_prior: float = Field(
        2000.0, gt=0, description="prior decay of arrival rate per unit relative distance from mid"
    )
    intensity_window_s: float = Field(300.0, gt=0)
    intensity_buckets: int = Field(10, ge=2, le=200, description="distance grid points for the log-linear fit")
    intensity_min_trades: int = Field(50, ge=2, description="trades in the window for full intensity confidence")
    intensity_refit_s: float = Field(1.0, gt=0, description="refit A/kappa at most this often (lazy, in state())")
    intensity_a_min: float = Field(1e-5, gt=0, description="clamp for the observed A, per second")
    intensity_a_max: float = Field(1e4, gt=0)
    intensity_kappa_min: float = Field(10.0, gt=0, description="clamp for the observed kappa (1/kappa <= 10%)")
    intensity_kappa_max: float = Field(1e6, gt=0, description="clamp for the observed kappa (1/kappa >= 0.01 bp)")
    warmup_timeout_s: float = Field(30.0, gt=0, description="quote on blended priors after this long")
    warmup_min_samples: int = Field(30, ge=1)
    ready_confidence: float = Field(0.5, gt=0, le=1, description="combined confidence that counts as warm")

    @model_validator(mode="after")
    def _check_ranges(self) -> EstimatorParams:
        if self.intensity_a_min >= self.intensity_a_max:
            raise ValueError("intensity_a_min must be < intensity_a_max")
        if self.intensity_kappa_min >= self.intensity_kappa_max:
            raise ValueError("intensity_kappa_min must be < intensity_kappa_max")
        if self.vol_min_dt_s >= self.vol_max_gap_s:
            raise ValueError("vol_min_dt_s must be < vol_max_gap_s")
        return self
