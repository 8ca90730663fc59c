"""Typed errors raised by the strategy for bad input (programming errors, never market conditions)."""

from __future__ import annotations


class StrategyInputError(ValueError):
    """An input to the strategy is malformed (NaN position, non-positive max position, wrong coin...).

    Market conditions that merely prevent quoting (no book, crossed book, estimators not ready) are not
    errors: they produce an empty ladder whose ``reason`` says why."""


class ReferenceInputError(StrategyInputError):
    """A reference quote or mid that is not a positive finite number."""
