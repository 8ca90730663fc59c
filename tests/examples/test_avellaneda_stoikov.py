"""Avellaneda–Stoikov (2008): closed-form quotes and the reproduction of the paper's simulation tables.

Comparisons with the published tables use Monte-Carlo error bars, never hand-tuned margins:
- means: |ours - paper| <= 4 combined standard errors (paper: 1000 paths, ours: N_PATHS paths);
- stds: relative difference <= 4 combined relative standard errors of a sample std (from n and the
  sample's fourth moment; about 9-14 %).
Entries that a faithful simulation does not reproduce are strict xfails carrying the measured numbers
(see the example's docstring, "Findings"): they document the mismatch and fail loudly if it ever disappears.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlmm.strategy.avellaneda import (
    AvellanedaStoikovError,
    arrival_intensity,
    inventory_spread,
    liquidity_spread,
    optimal_quotes,
    optimal_spread,
    reservation_price,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "avellaneda_stoikov_2008.py"
N_PATHS = 10_000  # ours; the paper's 1000 paths dominate the combined error bars
SEED = 20080301
Z_MAX = 4.0


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("avellaneda_stoikov_2008", EXAMPLE)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    # dataclasses resolve the module through sys.modules while the class body is built.
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


ex = _load_example()


# ---------------------------------------------------------------------------------------------------------------
# Closed forms (hlmm.strategy.avellaneda)
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("gamma", "paper_spread"), [(0.01, 1.33), (0.1, 1.29), (0.5, 1.15)])
def test_liquidity_spread_matches_paper_spread_column(gamma: float, paper_spread: float) -> None:
    assert round(liquidity_spread(gamma=gamma, k=1.5), 2) == paper_spread


def test_table3_spread_column_is_gamma_half_not_one() -> None:
    # The published table 3 is labelled gamma = 1 but its spread 1.15 is the gamma = 0.5 value.
    assert round(liquidity_spread(gamma=1.0, k=1.5), 2) == 1.02
    assert round(liquidity_spread(gamma=0.5, k=1.5), 2) == 1.15


def test_liquidity_spread_risk_neutral_limit() -> None:
    assert liquidity_spread(gamma=1e-12, k=1.5) == pytest.approx(2 / 1.5, rel=1e-9)


def test_reservation_price_direction_and_horizon() -> None:
    assert reservation_price(100.0, 2.0, gamma=0.1, sigma=2.0, tau=0.5) == pytest.approx(100.0 - 2 * 0.1 * 4 * 0.5)
    assert reservation_price(100.0, -3.0, gamma=0.1, sigma=2.0, tau=0.5) > 100.0
    assert reservation_price(100.0, 5.0, gamma=0.1, sigma=2.0, tau=0.0) == 100.0
    assert reservation_price(100.0, 0.0, gamma=0.1, sigma=2.0, tau=1.0) == 100.0


def test_optimal_quotes_scalar_and_vector_agree() -> None:
    mids = np.array([99.0, 100.0, 101.5])
    qs = np.array([-2.0, 0.0, 3.0])
    vec = optimal_quotes(mids, qs, gamma=0.1, sigma=2.0, tau=0.3, k=1.5)
    for i in range(3):
        one = optimal_quotes(float(mids[i]), float(qs[i]), gamma=0.1, sigma=2.0, tau=0.3, k=1.5)
        assert isinstance(one.bid, float)
        assert np.asarray(vec.bid)[i] == pytest.approx(one.bid)
        assert np.asarray(vec.ask)[i] == pytest.approx(one.ask)
    assert vec.spread == pytest.approx(0.1 * 4 * 0.3 + liquidity_spread(gamma=0.1, k=1.5))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"gamma": 0.0},
        {"gamma": -0.1},
        {"gamma": math.nan},
        {"k": 0.0},
        {"k": math.inf},
        {"sigma": -1.0},
        {"tau": -0.01},
        {"mid": math.nan},
        {"q": math.inf},
    ],
)
def test_bad_inputs_raise_typed_error(kwargs: dict[str, float]) -> None:
    args = {"mid": 100.0, "q": 1.0, "gamma": 0.1, "sigma": 2.0, "tau": 0.5, "k": 1.5} | kwargs
    mid, q = args.pop("mid"), args.pop("q")
    with pytest.raises(AvellanedaStoikovError):
        optimal_quotes(mid, q, **args)
    assert issubclass(AvellanedaStoikovError, ValueError)


def test_arrival_intensity() -> None:
    assert arrival_intensity(0.0, A=140.0, k=1.5) == 140.0
    d = np.array([-0.5, 0.0, 0.5, 2.0])
    lam = np.asarray(arrival_intensity(d, A=140.0, k=1.5))
    assert np.all(np.diff(lam) < 0)
    with pytest.raises(AvellanedaStoikovError):
        arrival_intensity(0.1, A=0.0, k=1.5)


finite = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(
    # 1e-3 < |mid| < 1e6, drawn directly (a filter on all floats rejects most draws: a health-check failure)
    mid=st.floats(1e-3, 1e6, exclude_min=True, exclude_max=True).flatmap(lambda x: st.sampled_from([x, -x])),
    q=st.integers(-50, 50),
    gamma=st.floats(1e-4, 10.0),
    sigma=st.floats(0.0, 50.0),
    tau=st.floats(0.0, 10.0),
    k=st.floats(1e-3, 100.0),
)
def test_quote_invariants(mid: float, q: int, gamma: float, sigma: float, tau: float, k: float) -> None:
    quotes = optimal_quotes(mid, float(q), gamma=gamma, sigma=sigma, tau=tau, k=k)
    bid, ask, r = float(quotes.bid), float(quotes.ask), float(quotes.reservation)
    assert bid < ask
    assert (bid + ask) / 2 == pytest.approx(r, rel=1e-12, abs=1e-9 * max(1.0, abs(mid)))
    assert quotes.spread >= liquidity_spread(gamma=gamma, k=k)
    # Spread widens with time to horizon; reservation price is linear in inventory with slope -gamma sigma^2 tau.
    assert optimal_spread(gamma=gamma, sigma=sigma, tau=tau + 1.0, k=k) >= quotes.spread
    slope = inventory_spread(gamma=gamma, sigma=sigma, tau=tau)
    r_next = reservation_price(mid, float(q + 1), gamma=gamma, sigma=sigma, tau=tau)
    assert r_next - r == pytest.approx(-slope, rel=1e-9, abs=1e-9 * max(1.0, abs(mid)))
    # Long inventory never raises the reservation price above the mid, short never lowers it below.
    if q > 0:
        assert r <= mid
    elif q < 0:
        assert r >= mid


# ---------------------------------------------------------------------------------------------------------------
# Simulation mechanics
# ---------------------------------------------------------------------------------------------------------------


def test_simulation_is_deterministic_per_seed() -> None:
    a = ex.simulate(0.1, "inventory", n_paths=200, seed=7)
    b = ex.simulate(0.1, "inventory", n_paths=200, seed=7)
    c = ex.simulate(0.1, "inventory", n_paths=200, seed=8)
    assert np.array_equal(a.profit, b.profit) and np.array_equal(a.final_q, b.final_q)
    assert not np.array_equal(a.profit, c.profit)


def test_accounting_without_price_risk() -> None:
    # sigma = 0: the mid never moves, the symmetric strategy earns exactly half its spread on every fill.
    params = ex.ModelParams(sigma=0.0)
    res = ex.simulate(0.1, "symmetric", n_paths=300, seed=3, params=params)
    half = liquidity_spread(gamma=0.1, k=1.5) / 2
    np.testing.assert_allclose(res.profit, res.n_fills * half, rtol=1e-9, atol=1e-9)
    assert np.all(res.n_fills <= 2 * params.n_steps())


def test_strategies_coincide_as_gamma_vanishes() -> None:
    # Paper: "in the limit as gamma -> 0 the two strategies are identical". Same seed => same random draws.
    inv = ex.simulate(1e-9, "inventory", n_paths=500, seed=11)
    sym = ex.simulate(1e-9, "symmetric", n_paths=500, seed=11)
    assert np.array_equal(inv.final_q, sym.final_q)
    np.testing.assert_allclose(inv.profit, sym.profit, rtol=0, atol=1e-6)


def test_probability_cap_only_bites_for_large_gamma() -> None:
    assert ex.simulate(0.01, "inventory", n_paths=500, seed=1).capped_fraction == 0.0
    assert ex.simulate(1.0, "inventory", n_paths=500, seed=1).capped_fraction > 0.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"params": ex.ModelParams(dt=0.003)}, "T/dt"),
        ({"n_paths": 1}, "n_paths"),
        ({"fill_timing": "sometimes"}, "fill_timing"),
    ],
)
def test_simulation_rejects_bad_settings(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(AvellanedaStoikovError, match=match):
        ex.simulate(0.1, "inventory", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(AvellanedaStoikovError, match="strategy"):
        ex.simulate(0.1, "momentum", n_paths=10)  # type: ignore[arg-type]


def test_main_prints_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert ex.main(["--paths", "200", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "62.94" in out and "33.92" in out and "symmetric" in out


# ---------------------------------------------------------------------------------------------------------------
# Reproduction of the published tables
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def study() -> dict[tuple[float, str], object]:
    """The paper's model as stated in its text (fills against the mid at t, optimal spread for both strategies)."""
    return {(r.gamma, r.strategy): r for r in ex.run_study(n_paths=N_PATHS, seed=SEED)}


@pytest.fixture(scope="module")
def study_after_move() -> dict[tuple[float, str], object]:
    """Variant: fills measured against the mid after its move over the step (quotes one step stale)."""
    return {(r.gamma, r.strategy): r for r in ex.run_study(n_paths=N_PATHS, seed=SEED, fill_timing="after-move")}


def _mean_z(res: object, stat: str) -> float:
    row = ex.PAPER_TABLE[(res.gamma, res.strategy)]  # type: ignore[attr-defined]
    if stat == "profit":
        return ex.mean_z(res.mean_profit, res.std_profit, res.n_paths, row.profit, row.std_profit, ex.PAPER_PATHS)  # type: ignore[attr-defined]
    return ex.mean_z(res.mean_q, res.std_q, res.n_paths, row.final_q, row.std_final_q, ex.PAPER_PATHS)  # type: ignore[attr-defined]


def _std_z(res: object, stat: str) -> float:
    row = ex.PAPER_TABLE[(res.gamma, res.strategy)]  # type: ignore[attr-defined]
    if stat == "profit":
        ours, paper, sample = res.std_profit, row.std_profit, res.profit  # type: ignore[attr-defined]
    else:
        ours, paper, sample = res.std_q, row.std_final_q, res.final_q  # type: ignore[attr-defined]
    return (ours / paper - 1.0) / ex.std_relative_se(sample)


def _xfail(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=reason)


MEAN_CASES = [
    pytest.param(0.1, "inventory", "profit", marks=_xfail("paper 62.94, ours ~64.9 (z ~ +10); see finding 1")),
    pytest.param(0.1, "symmetric", "profit"),
    pytest.param(0.01, "inventory", "profit", marks=_xfail("paper 66.78, ours ~68.4 (z ~ +6); see finding 1")),
    pytest.param(0.01, "symmetric", "profit"),
    pytest.param(1.0, "inventory", "profit", marks=_xfail("paper 33.92, ours ~31.5 (z ~ -16); finding 3")),
    pytest.param(1.0, "symmetric", "profit", marks=_xfail("paper 66.20, ours ~44 with the optimal spread; finding 3")),
    *[pytest.param(g, s, "q") for g in ex.PAPER_GAMMAS for s in ex.STRATEGIES],
]


@pytest.mark.parametrize(("gamma", "strategy", "stat"), MEAN_CASES)
def test_means_match_paper(study: dict, gamma: float, strategy: str, stat: str) -> None:
    z = _mean_z(study[(gamma, strategy)], stat)
    assert abs(z) <= Z_MAX, f"gamma={gamma} {strategy} mean {stat}: z={z:+.1f}"


STD_CASES = [
    pytest.param(0.1, "inventory", "profit", marks=_xfail("paper 5.89, ours ~6.5 (+10%, 4.1-4.9 SE); finding 4")),
    pytest.param(0.1, "symmetric", "profit"),
    pytest.param(0.01, "inventory", "profit"),
    pytest.param(0.01, "symmetric", "profit"),
    pytest.param(1.0, "inventory", "profit"),
    pytest.param(1.0, "symmetric", "profit", marks=_xfail("paper 14.53, ours ~9.6 with the optimal spread")),
    pytest.param(0.1, "inventory", "q"),
    pytest.param(0.1, "symmetric", "q"),
    pytest.param(0.01, "inventory", "q", marks=_xfail("paper 4.70, ours ~5.2 (+10%, 4.1-5.2 SE); finding 4")),
    pytest.param(0.01, "symmetric", "q"),
    pytest.param(1.0, "inventory", "q", marks=_xfail("paper 1.88, ours ~1.64 (-13%); finding 3")),
    pytest.param(1.0, "symmetric", "q", marks=_xfail("paper 9.06, ours ~5.8 with the optimal spread")),
]


@pytest.mark.parametrize(("gamma", "strategy", "stat"), STD_CASES)
def test_stds_match_paper(study: dict, gamma: float, strategy: str, stat: str) -> None:
    z = _std_z(study[(gamma, strategy)], stat)
    assert abs(z) <= Z_MAX, f"gamma={gamma} {strategy} std {stat}: {z:+.1f} relative SEs"


@pytest.mark.parametrize("gamma", [0.1, 0.01])
@pytest.mark.parametrize("strategy", ex.STRATEGIES)
def test_after_move_fills_reproduce_published_profits(study_after_move: dict, gamma: float, strategy: str) -> None:
    # Finding 2: with quotes one step stale, every mean profit of tables 1 and 2 is within MC error.
    z = _mean_z(study_after_move[(gamma, strategy)], "profit")
    assert abs(z) <= Z_MAX, f"gamma={gamma} {strategy}: z={z:+.1f}"


def test_table3_symmetric_row_matches_a_constant_spread() -> None:
    # Finding 3: the published symmetric row of table 3 is a constant spread around the mid, not the optimal one.
    res = ex.simulate(1.0, "symmetric", n_paths=N_PATHS, seed=SEED, symmetric_spread="constant")
    assert abs(_mean_z(res, "profit")) <= Z_MAX
    assert abs(_mean_z(res, "q")) <= Z_MAX
    assert abs(_std_z(res, "profit")) <= Z_MAX


# ---------------------------------------------------------------------------------------------------------------
# Qualitative result of the paper, at the paper's own sample size
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def study_paper_size() -> dict[tuple[float, str], object]:
    return {(r.gamma, r.strategy): r for r in ex.run_study(n_paths=ex.PAPER_PATHS, seed=SEED + 1)}


@pytest.mark.parametrize("gamma", ex.PAPER_GAMMAS)
def test_inventory_strategy_has_less_risk(study_paper_size: dict, gamma: float) -> None:
    inv, sym = study_paper_size[(gamma, "inventory")], study_paper_size[(gamma, "symmetric")]
    assert inv.std_profit < sym.std_profit
    assert inv.std_q < sym.std_q


@pytest.mark.parametrize("gamma", [0.1, 1.0])
def test_symmetric_strategy_earns_more(study_paper_size: dict, gamma: float) -> None:
    assert study_paper_size[(gamma, "symmetric")].mean_profit > study_paper_size[(gamma, "inventory")].mean_profit


def test_risk_reduction_grows_with_gamma(study_paper_size: dict) -> None:
    ratios = [
        study_paper_size[(g, "inventory")].std_q / study_paper_size[(g, "symmetric")].std_q for g in (0.01, 0.1, 1.0)
    ]
    assert ratios[0] > ratios[1] > ratios[2]
