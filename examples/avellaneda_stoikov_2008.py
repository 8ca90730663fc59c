"""Validation study: the simulation of Avellaneda & Stoikov (2008), inventory vs symmetric strategy.

Paper: M. Avellaneda, S. Stoikov, "High-frequency trading in a limit order book", Quantitative Finance 8(3),
217–224 (2008), section 3.3. Parameters: s = 100, T = 1, sigma = 2, dt = 0.005 (200 steps), q0 = 0, k = 1.5,
A = 140, 1000 paths. The "inventory" strategy quotes ``r -/+ spread/2`` with ``r = s - q gamma sigma^2 (T-t)`` and
``spread = gamma sigma^2 (T-t) + (2/gamma) ln(1 + gamma/k)`` (closed forms in ``hlmm.strategy.avellaneda``);
the "symmetric" strategy quotes the same spread around the mid ``s``. Each step: quotes from the state at t;
the ask is lifted with probability ``A exp(-k delta_a) dt`` (inventory -1, cash + ask), the bid is hit with
probability ``A exp(-k delta_b) dt``; the mid moves by ``+/- sigma sqrt(dt)``. Profit = cash + q_T s_T.

Published tables (columns: spread, mean profit, std(profit), mean final q, std(final q); 1000 paths each):

=====  =========  =====  ======  =====  ======  =====
gamma  strategy   sprd   profit  std    q_T     std q
=====  =========  =====  ======  =====  ======  =====
0.1    inventory  1.29   62.94   5.89   0.10    2.80
0.1    symmetric  1.29   67.21   13.43  -0.018  8.66
0.01   inventory  1.33   66.78   8.76   -0.02   4.70
0.01   symmetric  1.33   67.36   13.40  -0.31   8.65
1 (*)  inventory  1.15   33.92   4.72   -0.02   1.88
1 (*)  symmetric  1.15   66.20   14.53   0.25   9.06
=====  =========  =====  ======  =====  ======  =====

Source of the numbers: a public transcription of the authors' preprint (dated 5 October 2006, same text and
tables as the published section 3.3), found in a public GitHub repository via code search; an independent public
replication (a RESULTS.md "Avellaneda-Stoikov Model: Experiment Results") lists the same paper values.
(*) Table 3: the published QF version labels it gamma = 1; the 2006 preprint labels the *same numbers* gamma = 0.5.
Its "Spread" column, 1.15, is ``(2/gamma) ln(1 + gamma/k)`` at gamma = 0.5 (gamma = 1 gives 1.02); the
"Spread" column of every table is that gamma-only term, i.e. the spread at t = T.

Findings of this reproduction (``python examples/avellaneda_stoikov_2008.py --paths 20000`` and the tests in
``tests/examples/test_avellaneda_stoikov.py``; z = (ours - paper) / combined Monte-Carlo standard error, with the
paper's 1000 paths and ours; numbers below from 20000 paths):

1. As described in the text (fills against the mid at t, "before-move"), tables 1 and 2 are reproduced for the
   symmetric strategy (68.0 vs 67.21, 68.6 vs 67.36: z +2, +3) and for all final inventories, but the inventory
   strategy's mean profit is higher than published: 64.9 vs 62.94 at gamma = 0.1 (z ~ +10) and 68.4 vs 66.78
   at gamma = 0.01 (z ~ +6). Gaussian instead of binomial mid increments change nothing (64.9, 68.4).
2. Evaluating the fills against the mid *after* its move over [t, t+dt] ("after-move": quotes one step stale,
   a small adverse selection that costs ~2.5% of the spread income) reproduces every mean profit of tables 1
   and 2 within 3 standard errors (inventory 63.4 / 66.9, symmetric 66.7 / 67.1 for gamma = 0.1 / 0.01). The
   published means are consistent with that ordering of the simulation; we keep "before-move" (the paper's
   stated model) as the default and expose ``--fill-timing after-move``.
3. Table 3 is reproduced by neither reading. Inventory strategy: gamma = 1 gives 31.5 (paper 33.92, z ~ -16;
   std 4.84 vs 4.72, std q 1.64 vs 1.88); gamma = 0.5 gives 48.6 (std 5.8, std q 1.94). Symmetric strategy:
   with the time-dependent optimal spread it earns only 44.1 (gamma = 1) or 58.4 (gamma = 0.5) against the
   published 66.20; the published symmetric row matches a *constant* spread around the mid, i.e. the "Spread"
   column taken literally (``--symmetric-spread constant``): 66.45 / 14.0 / std q 9.3 with 1.02 (gamma = 1),
   67.9 (before-move, z +3.7) or 65.9 (after-move) with 1.15 (gamma = 0.5). Table 3 therefore mixes settings we
   cannot pin down; it is reported, not asserted (strict xfails in the tests).
4. std(profit) of the inventory strategy is ~10% above the published value at gamma = 0.1 (6.5 vs 5.89) and
   std(final q) ~10% above at gamma = 0.01 (5.2 vs 4.70) under either fill timing (4-5 standard errors of a
   sample std). The qualitative result holds everywhere: the inventory strategy has much lower std(profit) and
   std(final q) than the symmetric one, and the gap grows with gamma.

Fill probabilities ``A exp(-k delta) dt`` above 1 (a quote through the mid by more than ln(1/(A dt))/k = 0.24,
which happens only for large inventories at gamma = 1) are capped at 1; the fraction of capped draws is reported.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from hlmm.strategy.avellaneda import AvellanedaStoikovError, arrival_intensity, liquidity_spread, optimal_quotes

FloatArray = npt.NDArray[np.float64]
Strategy = Literal["inventory", "symmetric"]
FillTiming = Literal["before-move", "after-move"]
SymmetricSpread = Literal["optimal", "constant"]

STRATEGIES: tuple[Strategy, ...] = ("inventory", "symmetric")
PAPER_GAMMAS: tuple[float, ...] = (0.1, 0.01, 1.0)  # tables 1, 2, 3 of the published version
PAPER_PATHS = 1000


@dataclass(frozen=True, slots=True)
class ModelParams:
    """Market model of section 3.3 (arithmetic Brownian mid, exponential fill intensity)."""

    s0: float = 100.0
    T: float = 1.0
    sigma: float = 2.0
    dt: float = 0.005
    k: float = 1.5
    A: float = 140.0

    def n_steps(self) -> int:
        """Number of quoting steps, T/dt; must be an integer so the horizon is hit exactly."""
        steps = self.T / self.dt
        n = round(steps)
        if n < 1 or not math.isclose(steps, n, rel_tol=0.0, abs_tol=1e-9):
            raise AvellanedaStoikovError(f"T/dt must be a positive integer, got T={self.T} dt={self.dt}")
        return n


@dataclass(frozen=True, slots=True)
class PaperRow:
    """One row of the published tables."""

    spread: float
    profit: float
    std_profit: float
    final_q: float
    std_final_q: float


# (gamma, strategy) -> row; gamma = 1.0 is table 3 as labelled in the published version (0.5 in the preprint).
PAPER_TABLE: dict[tuple[float, Strategy], PaperRow] = {
    (0.1, "inventory"): PaperRow(1.29, 62.94, 5.89, 0.10, 2.80),
    (0.1, "symmetric"): PaperRow(1.29, 67.21, 13.43, -0.018, 8.66),
    (0.01, "inventory"): PaperRow(1.33, 66.78, 8.76, -0.02, 4.70),
    (0.01, "symmetric"): PaperRow(1.33, 67.36, 13.40, -0.31, 8.65),
    (1.0, "inventory"): PaperRow(1.15, 33.92, 4.72, -0.02, 1.88),
    (1.0, "symmetric"): PaperRow(1.15, 66.20, 14.53, 0.25, 9.06),
}


@dataclass(frozen=True, slots=True)
class SimResult:
    """Terminal outcomes of one strategy over all simulated paths."""

    gamma: float
    strategy: Strategy
    spread: float  # (2/gamma) ln(1 + gamma/k): the paper's "Spread" column
    profit: FloatArray = field(repr=False)  # cash + q_T s_T per path
    final_q: FloatArray = field(repr=False)
    n_fills: FloatArray = field(repr=False)
    capped_fraction: float  # share of fill-probability draws capped at 1

    @property
    def n_paths(self) -> int:
        return int(self.profit.size)

    @property
    def mean_profit(self) -> float:
        return float(self.profit.mean())

    @property
    def std_profit(self) -> float:
        return float(self.profit.std(ddof=1))

    @property
    def mean_q(self) -> float:
        return float(self.final_q.mean())

    @property
    def std_q(self) -> float:
        return float(self.final_q.std(ddof=1))


def simulate(
    gamma: float,
    strategy: Strategy,
    *,
    n_paths: int = PAPER_PATHS,
    seed: int = 0,
    params: ModelParams | None = None,
    fill_timing: FillTiming = "before-move",
    symmetric_spread: SymmetricSpread = "optimal",
) -> SimResult:
    """Simulate ``n_paths`` independent paths of one strategy, vectorised over paths.

    Random numbers are drawn in the same order for every strategy and setting (mid step, ask uniform, bid uniform
    per step), so one seed gives the same mid paths to both strategies (common random numbers).
    ``fill_timing="after-move"`` measures the fill distance from the mid at t+dt (quotes one step stale);
    ``symmetric_spread="constant"`` makes the symmetric strategy quote only ``(2/gamma) ln(1 + gamma/k)``.
    """
    p = params or ModelParams()
    if strategy not in STRATEGIES:
        raise AvellanedaStoikovError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if fill_timing not in ("before-move", "after-move"):
        raise AvellanedaStoikovError(f"unknown fill_timing {fill_timing!r}")
    if symmetric_spread not in ("optimal", "constant"):
        raise AvellanedaStoikovError(f"unknown symmetric_spread {symmetric_spread!r}")
    if n_paths < 2:
        raise AvellanedaStoikovError(f"n_paths must be >= 2, got {n_paths}")
    n_steps = p.n_steps()
    liq = liquidity_spread(gamma=gamma, k=p.k)
    rng = np.random.default_rng(seed)
    step = p.sigma * math.sqrt(p.dt)

    s = np.full(n_paths, p.s0)
    q = np.zeros(n_paths)
    cash = np.zeros(n_paths)
    fills = np.zeros(n_paths)
    capped = 0
    zeros = np.zeros(n_paths)
    for i in range(n_steps):
        tau = p.T - i * p.dt
        # The symmetric strategy is the same formula with the inventory term switched off (q = 0 => r = s).
        quotes = optimal_quotes(s, q if strategy == "inventory" else zeros, gamma=gamma, sigma=p.sigma, tau=tau, k=p.k)
        ask = np.asarray(quotes.ask)
        bid = np.asarray(quotes.bid)
        if strategy == "symmetric" and symmetric_spread == "constant":
            ask = s + liq / 2.0
            bid = s - liq / 2.0
        s_next = s + np.where(rng.random(n_paths) < 0.5, step, -step)
        u_ask = rng.random(n_paths)
        u_bid = rng.random(n_paths)
        ref = s_next if fill_timing == "after-move" else s
        p_ask = arrival_intensity(ask - ref, A=p.A, k=p.k) * p.dt
        p_bid = arrival_intensity(ref - bid, A=p.A, k=p.k) * p.dt
        capped += int(np.count_nonzero(p_ask > 1.0) + np.count_nonzero(p_bid > 1.0))
        lifted = u_ask < p_ask  # a probability >= 1 always fills: the cap is implicit in the comparison
        hit = u_bid < p_bid
        cash += np.where(lifted, ask, 0.0) - np.where(hit, bid, 0.0)
        q += hit.astype(np.float64) - lifted.astype(np.float64)
        fills += hit.astype(np.float64) + lifted.astype(np.float64)
        s = s_next
    return SimResult(
        gamma=gamma,
        strategy=strategy,
        spread=liq,
        profit=cash + q * s,
        final_q=q,
        n_fills=fills,
        capped_fraction=capped / (2.0 * n_steps * n_paths),
    )


def mean_z(ours: float, ours_std: float, n_ours: int, paper: float, paper_std: float, n_paper: int) -> float:
    """z-score of a difference of two Monte-Carlo means (both estimates carry sampling error)."""
    se = math.sqrt(paper_std**2 / n_paper + ours_std**2 / n_ours)
    return (ours - paper) / se


def std_relative_se(sample: FloatArray, n_paper: int = PAPER_PATHS) -> float:
    """Relative standard error of the difference of two sample stds (ours, and a paper one of ``n_paper``).

    Uses Var(s^2) ~ (m4 - s^4 (n-3)/(n-1)) / n and the delta method, with the fourth moment estimated from our
    sample (heavy tails widen the tolerance honestly instead of assuming normality).
    """
    x = np.asarray(sample, dtype=np.float64)
    n = x.size
    c = x - x.mean()
    var = float(np.mean(c**2))
    if var <= 0.0:
        raise AvellanedaStoikovError("sample has zero variance")
    m4 = float(np.mean(c**4))

    def rel_se(m: int) -> float:
        var_s2 = (m4 - var**2 * (m - 3) / (m - 1)) / m
        return math.sqrt(max(var_s2, 0.0)) / (2.0 * var)

    return math.sqrt(rel_se(n) ** 2 + rel_se(n_paper) ** 2)


def run_study(
    *,
    n_paths: int = PAPER_PATHS,
    seed: int = 0,
    gammas: Sequence[float] = PAPER_GAMMAS,
    fill_timing: FillTiming = "before-move",
    symmetric_spread: SymmetricSpread = "optimal",
) -> list[SimResult]:
    """Both strategies for each gamma, same seed per gamma (common random numbers)."""
    return [
        simulate(g, strat, n_paths=n_paths, seed=seed, fill_timing=fill_timing, symmetric_spread=symmetric_spread)
        for g in gammas
        for strat in STRATEGIES
    ]


def format_table(results: Sequence[SimResult]) -> str:
    """Ours vs paper, with z-scores of the means and relative differences of the stds."""
    head = (
        f"{'gamma':>5} {'strategy':<9} {'spread':<11} {'profit (z)':<21} {'std(profit)':<13} "
        f"{'final q (z)':<21} {'std(q)':<11} {'fills':>6} {'capped':>7}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        row = PAPER_TABLE.get((r.gamma, r.strategy))
        if row is None:
            lines.append(
                f"{r.gamma:>5g} {r.strategy:<9} {r.spread:>11.2f} {r.mean_profit:>22.2f} {r.std_profit:>13.2f} "
                f"{r.mean_q:>22.3f} {r.std_q:>12.2f} {r.n_fills.mean():>6.1f} {r.capped_fraction:>7.1e}"
            )
            continue
        zp = mean_z(r.mean_profit, r.std_profit, r.n_paths, row.profit, row.std_profit, PAPER_PATHS)
        zq = mean_z(r.mean_q, r.std_q, r.n_paths, row.final_q, row.std_final_q, PAPER_PATHS)
        lines.append(
            f"{r.gamma:>5g} {r.strategy:<9} {row.spread:>5.2f}/{r.spread:<5.2f} "
            f"{row.profit:>6.2f}/{r.mean_profit:<6.2f} ({zp:+5.1f}) "
            f"{row.std_profit:>6.2f}/{r.std_profit:<6.2f} "
            f"{row.final_q:>6.3f}/{r.mean_q:<6.3f} ({zq:+5.1f}) "
            f"{row.std_final_q:>5.2f}/{r.std_q:<5.2f} "
            f"{r.n_fills.mean():>6.1f} {r.capped_fraction:>7.1e}"
        )
    lines.append("columns: paper/ours; z = (ours - paper) / combined MC standard error; fills = mean per path")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the reproduction table (ours vs paper)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--paths", type=int, default=PAPER_PATHS, help="paths per strategy and gamma (paper: 1000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fill-timing", choices=["before-move", "after-move"], default="before-move")
    ap.add_argument("--symmetric-spread", choices=["optimal", "constant"], default="optimal")
    ap.add_argument("--gammas", type=float, nargs="+", default=list(PAPER_GAMMAS))
    args = ap.parse_args(argv)
    results = run_study(
        n_paths=args.paths,
        seed=args.seed,
        gammas=args.gammas,
        fill_timing=args.fill_timing,
        symmetric_spread=args.symmetric_spread,
    )
    print(
        f"Avellaneda-Stoikov (2008) reproduction: {args.paths} paths, seed {args.seed}, "
        f"fills {args.fill_timing}, symmetric spread {args.symmetric_spread}"
    )
    print(format_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
