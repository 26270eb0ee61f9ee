"""Quantile XGBoost models: one booster per quantile, p10 / p50 / p90."""

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xgboost as xgb

QUANTILES = (0.1, 0.5, 0.9)
QUANTILE_NAMES = ("p10", "p50", "p90")

# Tuned on the ACN benchmark (bench/forecast_accuracy.py): deeper trees over-fit
# the 5-7 months of hourly history a site has. One thread: on a busy 2-core
# machine two OpenMP threads trained 5x slower than one (measured, load 8).
HOURLY_PARAMS = {
    "n_estimators": 300,
    "max_depth": 5,
    "learning_rate": 0.05,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "min_child_weight": 5,
    "tree_method": "hist",
    "n_jobs": 1,
}
SESSION_PARAMS = {
    "n_estimators": 300,
    "max_depth": 4,
    "learning_rate": 0.05,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "min_child_weight": 10,
    "tree_method": "hist",
    "n_jobs": 1,
}
# Session targets are skewed (many short top-ups, a few full charges); trees
# fitted on log1p(target) gave a lower SMAPE on the ACN benchmark.
SESSION_TARGET_TRANSFORM = "log1p"


@dataclass
class QuantileModel:
    """Three boosters over the same features; ``target_transform`` is undone
    after prediction (``log1p`` targets are predicted as logs)."""

    features: list[str]
    boosters: dict[str, xgb.XGBRegressor]
    target_transform: str = "none"
    train_seconds: float = 0.0
    params: dict = field(default_factory=dict)

    def predict_raw(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Predictions before the inverse transform, columns p10, p50, p90."""
        data = _matrix(X, self.features)
        return np.column_stack([self.boosters[q].predict(data) for q in QUANTILE_NAMES])

    def predict(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        return quantiles_finish(self.predict_raw(X), self.target_transform)


def _matrix(X, features: list[str]) -> np.ndarray:
    if isinstance(X, pd.DataFrame):
        X = X[features].to_numpy()
    return np.asarray(X, dtype=np.float32)


def quantiles_finish(raw: np.ndarray, target_transform: str) -> np.ndarray:
    """Undo the target transform, keep values >= 0 and p10 <= p50 <= p90."""
    values = np.expm1(raw) if target_transform == "log1p" else raw
    values = np.clip(values, 0, None)
    return np.sort(values, axis=1)


def quantile_model_fit(
    X: pd.DataFrame,
    y: pd.Series | np.ndarray,
    *,
    features: list[str],
    params: dict,
    target_transform: str = "none",
) -> QuantileModel:
    """Fit one booster per quantile on the rows where the target is known."""
    target = np.asarray(y, dtype=float)
    keep = ~np.isnan(target)
    data = _matrix(X, features)[keep]
    target = target[keep]
    if target_transform == "log1p":
        target = np.log1p(np.clip(target, 0, None))

    started = time.perf_counter()
    boosters = {}
    for name, alpha in zip(QUANTILE_NAMES, QUANTILES, strict=True):
        booster = xgb.XGBRegressor(
            objective="reg:quantileerror", quantile_alpha=alpha, **params
        )
        booster.fit(data, target)
        boosters[name] = booster
    return QuantileModel(
        features=list(features),
        boosters=boosters,
        target_transform=target_transform,
        train_seconds=time.perf_counter() - started,
        params=dict(params),
    )
