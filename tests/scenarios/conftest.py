"""Shared helpers for scenario tests: full engine + simulated exchange on synthetic or recorded markets."""

from __future__ import annotations

import pytest


def _needs_engine() -> None:
    try:
        import hlmm.engine.core
        import hlmm.sim.exchange
        import hlmm.sim.synthetic  # noqa: F401
    except ModuleNotFoundError as e:  # pragma: no cover - only while modules are being written
        pytest.skip(f"engine stack not available yet: {e.name}")


@pytest.fixture
def engine_stack() -> None:
    _needs_engine()
