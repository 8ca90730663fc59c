"""IntensityEstimator: recovers A and kappa from simulated exponential-intensity trades; priors and guards."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hlmm.estimators import EstimatorParams, IntensityEstimator

T0 = 1_757_000_000.0
MID = 40.0


def simulate(est: IntensityEstimator, a: float, kappa: float, duration: float, seed: int) -> float:
    """Market orders arrive at rate ``a``; each reaches a depth ~ Exp(kappa) (relative), so the rate of orders
    reaching at least d is ``a * exp(-kappa d)``. Returns the end time."""
    rng = np.random.default_rng(seed)
    n = rng.poisson(a * duration)
    ts = np.sort(rng.uniform(T0, T0 + duration, n))
    depth = rng.exponential(1.0 / kappa, n)
    sides = rng.integers(0, 2, n)
    for t, d, s in zip(ts.tolist(), depth.tolist(), sides.tolist(), strict=True):
        side = "B" if s else "A"
        px = MID * (1 + d) if side == "B" else MID * (1 - d)
        est.on_trade(t, px, 1.0, side, MID, ts_exchange=t)
    return T0 + duration


@pytest.mark.parametrize(
    ("a", "kappa", "window", "seed"),
    [(2.0, 2000.0, 300.0, 1), (2.0, 2000.0, 300.0, 2), (0.5, 400.0, 900.0, 3), (5.0, 20000.0, 300.0, 4)],
)
def test_recovers_a_and_kappa(a: float, kappa: float, window: float, seed: int) -> None:
    p = EstimatorParams(intensity_window_s=window, intensity_a_prior=0.1, intensity_kappa_prior=100.0)
    est = IntensityEstimator(p, start_ts=T0)
    end = simulate(est, a, kappa, window, seed)
    est.on_time(end)
    assert est.confidence == 1.0
    assert est.a_observed == pytest.approx(a, rel=0.25)
    assert est.kappa_observed == pytest.approx(kappa, rel=0.25)
    # Fully confident: blended == observed.
    assert est.intensity_a == pytest.approx(est.a_observed)
    assert est.kappa == pytest.approx(est.kappa_observed)


def test_priors_without_trades() -> None:
    p = EstimatorParams(intensity_a_prior=0.7, intensity_kappa_prior=1500.0)
    est = IntensityEstimator(p, start_ts=T0)
    est.on_time(T0 + 1000.0)
    assert est.confidence == 0.0
    assert est.a_observed is None and est.kappa_observed is None
    assert est.intensity_a == 0.7
    assert est.kappa == 1500.0


def test_single_distance_is_no_fit() -> None:
    """All trades at the touch: the decay is unidentifiable, so no observed fit and priors are used."""
    p = EstimatorParams()
    est = IntensityEstimator(p, start_ts=T0)
    for i in range(100):
        est.on_trade(T0 + i, MID * 1.0005, 1.0, "B", MID)
    assert est.n_trades == 100
    assert est.kappa_observed is None
    assert est.confidence == 0.0
    assert est.kappa == p.intensity_kappa_prior


def test_partial_confidence_blends_geometrically() -> None:
    p = EstimatorParams(intensity_min_trades=50, intensity_kappa_prior=1000.0, intensity_a_prior=1.0)
    est = IntensityEstimator(p, start_ts=T0)
    for i, d in enumerate([0.0001, 0.0002, 0.0003, 0.0005, 0.001] * 2):
        est.on_trade(T0 + i, MID * (1 + d), 1.0, "B", MID)
    w = est.confidence
    assert w == pytest.approx(10 / 50)
    k_obs = est.kappa_observed
    assert k_obs is not None
    assert est.kappa == pytest.approx(math.exp(w * math.log(k_obs) + (1 - w) * math.log(1000.0)))


def test_clamped_to_sane_range() -> None:
    p = EstimatorParams(intensity_kappa_max=5e4)
    est = IntensityEstimator(p, start_ts=T0)
    # Distances of ~1e-7: an absurdly steep decay.
    rng = np.random.default_rng(0)
    for i, d in enumerate(rng.exponential(1e-7, 200).tolist()):
        est.on_trade(T0 + i * 0.1, MID * (1 - d), 1.0, "A", MID)
    assert est.kappa_observed == 5e4


def test_sweep_counts_once_at_deepest_level() -> None:
    est = IntensityEstimator(EstimatorParams(), start_ts=T0)
    # One aggressive buy sweeping three levels (same exchange time), then a separate sell.
    for px in (40.01, 40.02, 40.04):
        est.on_trade(T0 + 1, px, 1.0, "B", MID, ts_exchange=T0 + 0.9)
    est.on_trade(T0 + 1, 39.99, 1.0, "A", MID, ts_exchange=T0 + 0.9)
    assert est.n_trades == 2
    assert max(est._d) == pytest.approx(0.04 / MID)


def test_window_eviction() -> None:
    p = EstimatorParams(intensity_window_s=60.0)
    est = IntensityEstimator(p, start_ts=T0)
    for i in range(30):
        est.on_trade(T0 + i, MID * (1 + 1e-4 * (1 + i % 5)), 1.0, "B", MID)
    assert est.n_trades == 30
    est.on_time(T0 + 75.0)  # trades before T0 + 15 fall out
    assert est.n_trades == 15
    est.on_time(T0 + 500.0)
    assert est.n_trades == 0
    assert est.observed_s == 60.0


@pytest.mark.parametrize(
    ("px", "sz", "side", "mid"),
    [
        (float("nan"), 1.0, "B", MID),
        (-1.0, 1.0, "B", MID),
        (40.0, 0.0, "B", MID),
        (40.0, 1.0, "buy", MID),
        (40.0, 1.0, "B", float("nan")),
        (40.0, 1.0, "B", 0.0),
    ],
)
def test_bad_trade_raises(px: float, sz: float, side: str, mid: float) -> None:
    est = IntensityEstimator(EstimatorParams(), start_ts=T0)
    with pytest.raises(ValueError):
        est.on_trade(T0 + 1, px, sz, side, mid)
    assert est.n_trades == 0


def test_params_reject_inverted_clamps() -> None:
    with pytest.raises(ValueError):
        EstimatorParams(intensity_kappa_min=10.0, intensity_kappa_max=5.0)
