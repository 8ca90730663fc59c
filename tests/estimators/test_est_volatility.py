"""VolatilityEstimator: convergence, gaps, bad input, priors and blending."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlmm.estimators import EstimatorParams, VolatilityEstimator

T0 = 1_757_000_000.0


def gbm_mids(
    sigma: float, n: int, seed: int, dt_mean: float = 0.5, irregular: bool = False
) -> list[tuple[float, float]]:
    rng = np.random.default_rng(seed)
    dts = rng.exponential(dt_mean, n) if irregular else np.full(n, dt_mean)
    dts = np.maximum(dts, 1e-3)
    shocks = rng.standard_normal(n) * sigma * np.sqrt(dts)
    ts = T0 + np.cumsum(dts)
    mids = 100.0 * np.exp(np.cumsum(shocks))
    return list(zip(ts.tolist(), mids.tolist(), strict=True))


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("irregular", [False, True])
def test_sigma_converges_on_gbm(seed: int, irregular: bool) -> None:
    true_sigma = 0.0007
    p = EstimatorParams(vol_halflife_s=600.0, sigma_prior=0.0001)
    est = VolatilityEstimator(p)
    for ts, mid in gbm_mids(true_sigma, 6000, seed, irregular=irregular):
        est.on_mid(ts, mid)
    assert est.confidence > 0.95  # 3000 s = 5 half-lives: coverage 1 - 2**-5
    assert est.sigma_observed == pytest.approx(true_sigma, rel=0.1)
    # Fully confident: the prior has (almost) no say.
    assert est.sigma == pytest.approx(true_sigma, rel=0.1)


def test_priors_when_no_data() -> None:
    p = EstimatorParams(sigma_prior=0.0003)
    est = VolatilityEstimator(p)
    assert est.sigma == pytest.approx(0.0003)
    assert est.sigma_observed == 0.0
    assert est.confidence == 0.0
    assert est.n_samples == 0
    est.on_mid(T0, 100.0)  # a reference point alone is not a sample
    assert est.n_samples == 0
    assert est.sigma == pytest.approx(0.0003)


def test_blend_formula() -> None:
    p = EstimatorParams(sigma_prior=0.0003, vol_halflife_s=60.0, warmup_min_samples=30)
    est = VolatilityEstimator(p)
    for ts, mid in gbm_mids(0.001, 40, seed=7):
        est.on_mid(ts, mid)
    w = est.confidence
    assert 0.0 < w < 1.0
    expected = math.sqrt(w * est.sigma_observed**2 + (1 - w) * 0.0003**2)
    assert est.sigma == pytest.approx(expected, rel=1e-12)


def test_long_gap_does_not_spike() -> None:
    p = EstimatorParams(vol_halflife_s=60.0, vol_max_gap_s=30.0)
    est = VolatilityEstimator(p)
    path = gbm_mids(0.0005, 600, seed=11)
    for ts, mid in path:
        est.on_mid(ts, mid)
    before = est.sigma_observed
    n_before = est.n_samples
    # 10 minutes of silence, then the book comes back 3% away.
    t_last, m_last = path[-1]
    est.on_mid(t_last + 600.0, m_last * 1.03)
    assert est.n_gaps == 1
    assert est.n_samples == n_before
    assert est.sigma_observed == pytest.approx(before, rel=1e-12)
    # Following returns are measured from the new reference point, not from before the gap.
    est.on_mid(t_last + 600.5, m_last * 1.03)
    assert est.sigma_observed <= before


def test_gap_below_cap_is_a_normal_return() -> None:
    p = EstimatorParams(vol_max_gap_s=30.0)
    est = VolatilityEstimator(p)
    est.on_mid(T0, 100.0)
    est.on_mid(T0 + 20.0, 100.1)
    assert est.n_gaps == 0
    assert est.n_samples == 1
    assert est.sigma_observed == pytest.approx(abs(math.log(100.1 / 100.0)) / math.sqrt(20.0), rel=1e-9)


def test_zero_dt_ignored_and_move_kept() -> None:
    est = VolatilityEstimator(EstimatorParams())
    est.on_mid(T0, 100.0)
    est.on_mid(T0, 101.0)  # same timestamp: ignored, reference stays at 100
    assert est.n_samples == 0
    assert est.n_ignored == 1
    est.on_mid(T0 - 1.0, 99.0)  # out of order: ignored
    assert est.n_ignored == 2
    est.on_mid(T0 + 1.0, 101.0)
    assert est.n_samples == 1
    assert est.sigma_observed == pytest.approx(abs(math.log(1.01)), rel=1e-9)


def test_min_dt_sampling_waits_and_keeps_the_move() -> None:
    est = VolatilityEstimator(EstimatorParams(vol_min_dt_s=1.0))
    est.on_mid(T0, 100.0)
    est.on_mid(T0 + 0.3, 100.5)  # too soon: waits, reference stays at 100
    est.on_mid(T0 + 0.6, 101.0)
    assert est.n_samples == 0 and est.n_ignored == 0
    est.on_mid(T0 + 1.2, 101.0)
    assert est.n_samples == 1
    assert est.sigma_observed == pytest.approx(abs(math.log(1.01)) / math.sqrt(1.2), rel=1e-6)
    every = VolatilityEstimator(EstimatorParams(vol_min_dt_s=0.0))
    for ts, mid in ((T0, 100.0), (T0 + 0.3, 100.5), (T0 + 0.6, 101.0)):
        every.on_mid(ts, mid)
    assert every.n_samples == 2


@pytest.mark.parametrize("bad", [float("nan"), -1.0, 0.0, float("inf"), -float("inf")])
def test_bad_mid_raises(bad: float) -> None:
    est = VolatilityEstimator(EstimatorParams())
    est.on_mid(T0, 100.0)
    with pytest.raises(ValueError, match="mid"):
        est.on_mid(T0 + 1.0, bad)
    # The bad input did not disturb the state.
    assert est.n_samples == 0


def test_bad_ts_raises() -> None:
    est = VolatilityEstimator(EstimatorParams())
    with pytest.raises(ValueError, match="ts"):
        est.on_mid(float("nan"), 100.0)


def test_seed_pools_and_caps_weight() -> None:
    p = EstimatorParams(vol_halflife_s=60.0, warmup_min_samples=30)
    est = VolatilityEstimator(p)
    est.seed(0.001**2, 3600.0, 60)
    assert est.confidence == pytest.approx(1.0)
    assert est.sigma_observed == pytest.approx(0.001)
    with pytest.raises(ValueError):
        est.seed(float("nan"), 10.0, 1)
    with pytest.raises(ValueError):
        est.seed(1e-6, 0.0, 1)


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=100.0, allow_nan=False),
            st.floats(min_value=-0.2, max_value=0.2, allow_nan=False),
        ),
        min_size=1,
        max_size=200,
    )
)
def test_outputs_always_sane(steps: list[tuple[float, float]]) -> None:
    p = EstimatorParams()
    est = VolatilityEstimator(p)
    ts, mid = T0, 50.0
    for dt, lr in steps:
        ts += dt
        mid *= math.exp(lr)
        est.on_mid(ts, mid)
        assert 0.0 <= est.confidence <= 1.0
        assert math.isfinite(est.sigma) and est.sigma > 0.0
        # The blend is between prior and observation.
        lo, hi = sorted((p.sigma_prior, est.sigma_observed))
        assert lo * (1 - 1e-9) <= est.sigma <= hi * (1 + 1e-9)
