"""Estimators: volatility, fill intensity (A, kappa), bounded warm-up."""

from hlmm.estimators.bundle import Estimators, WarmStartError
from hlmm.estimators.intensity import IntensityEstimator
from hlmm.estimators.params import EstimatorParams
from hlmm.estimators.state import EstimatorState
from hlmm.estimators.volatility import VolatilityEstimator

__all__ = [
    "EstimatorParams",
    "EstimatorState",
    "Estimators",
    "IntensityEstimator",
    "VolatilityEstimator",
    "WarmStartError",
]
