"""Quantile XGBoost models: one booster per quantile, p10 / p50 / p90.

Two additions sit around the boosters and travel with them into the ONNX
graph, so every consumer sees the same numbers:

- a *base feature*: the boosters learn ``target - base`` and the base is added
  back (a missing base counts as 0). The hourly models learn a correction to
  the site's usual value of that hour (``features.HOURLY_BASE_FEATURE``).
- an *interval widening* (split-conformal, scaled): boosters fitted on one
  period give a p10-p90 band that covers far less than 80 % of the next one
  (58-67 % on the ACN benchmark). ``quantile_model_train`` fits on the training
  window minus its latest slice, measures on that slice how far outside the
  band the truth falls (in units of the band's own width) and widens both
  sides by the amount that would have covered 80 %, then refits on the whole
  window and keeps that widening.
"""

import time
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import xgboost as xgb

QUANTILES = (0.1, 0.5, 0.9)
QUANTILE_NAMES = ("p10", "p50", "p90")
# The share of actual values the p10-p90 band should hold.
INTERVAL_COVERAGE = 0.8

# Chosen on validation months inside the training windows of the benchmark
# (train from 2019-05, score Aug, Sep and Oct 2019 at both ACN sites; the test
# months Nov and Dec never took part): depth 3-5, 10-50 rows per leaf and 200
# or 400 trees all scored within one point of MAE reduction of each other; this
# setting was among the best at both sites and trains fastest. Deeper trees
# with smaller leaves (the previous 300 trees of depth 5, 5 rows per leaf) fit
# training MAE 2.9 kWh against 4.9 kWh on the next month at Caltech. One
# thread: on a busy 2-core machine two OpenMP threads trained 5x slower than one
# (measured, load 8).
HOURLY_PARAMS = {
    "n_estimators": 200,
    "max_depth": 4,
    "learning_rate": 0.05,
    "subsample": 0.7,
    "colsample_bytree": 0.5,
    "min_child_weight": 20,
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
# Fewer calibration rows than this and the widening is too noisy to trust:
# the model keeps its boosters' band (and says so in its params).
MIN_CALIBRATION_ROWS = 50


@dataclass(frozen=True)
class IntervalWidening:
    """Split-conformal widening of the p10-p90 band, in raw model units.

    ``p10 -= lower * width`` and ``p90 += upper * width`` where ``width`` is
    ``max(p90 - p10, 0) + floor``; factors are never negative, so the p50 and
    the order of the quantiles stay as the boosters gave them.
    """

    lower: float
    upper: float
    floor: float
    calibration_rows: int
    coverage_before: float
    coverage_after: float


@dataclass
class QuantileModel:
    """Three boosters over the same features; ``target_transform`` is undone
    after prediction (``log1p`` targets are predicted as logs)."""

    features: list[str]
    boosters: dict[str, xgb.XGBRegressor]
    target_transform: str = "none"
    train_seconds: float = 0.0
    params: dict = field(default_factory=dict)
    base_feature: str | None = None
    widening: IntervalWidening | None = None

    def predict_raw(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Predictions before the inverse transform, columns p10, p50, p90.

        Float32 throughout, as in the ONNX graph.
        """
        data = _matrix(X, self.features)
        raw = np.column_stack(
            [self.boosters[q].predict(data) for q in QUANTILE_NAMES]
        ).astype(np.float32)
        if self.base_feature is not None:
            base = data[:, self.features.index(self.base_feature)]
            raw += np.nan_to_num(base, nan=0.0)[:, None]
        if self.widening is not None:
            raw = _widen(raw, self.widening)
        return raw

    def predict(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        return quantiles_finish(self.predict_raw(X), self.target_transform)

    def describe(self) -> dict:
        """Params, base feature and widening, for the registry row."""
        return {
            **self.params,
            "base_feature": self.base_feature,
            "interval_widening": None
            if self.widening is None
            else asdict(self.widening),
        }


def _widen(raw: np.ndarray, widening: IntervalWidening) -> np.ndarray:
    out = raw.astype(np.float32, copy=True)
    width = np.maximum(out[:, 2] - out[:, 0], np.float32(0)) + np.float32(
        widening.floor
    )
    out[:, 0] -= np.float32(widening.lower) * width
    out[:, 2] += np.float32(widening.upper) * width
    return out


def _matrix(X, features: list[str]) -> np.ndarray:
    if isinstance(X, pd.DataFrame):
        X = X[features].to_numpy()
    return np.asarray(X, dtype=np.float32)


def target_forward(y: np.ndarray, target_transform: str) -> np.ndarray:
    """The target as the boosters see it."""
    y = np.asarray(y, dtype=float)
    return np.log1p(np.clip(y, 0, None)) if target_transform == "log1p" else y


def quantiles_finish(raw: np.ndarray, target_transform: str) -> np.ndarray:
    """Undo the target transform, keep values >= 0 and p10 <= p50 <= p90."""
    values = np.expm1(raw) if target_transform == "log1p" else raw
    values = np.clip(values, 0, None)
    return np.sort(values, axis=1)


def quantile_model_fit(
    X: pd.DataFrame | np.ndarray,
    y: pd.Series | np.ndarray,
    *,
    features: list[str],
    params: dict,
    target_transform: str = "none",
    base_feature: str | None = None,
) -> QuantileModel:
    """Fit one booster per quantile on the rows where the target is known."""
    target = np.asarray(y, dtype=float)
    keep = ~np.isnan(target)
    data = _matrix(X, features)[keep]
    target = target_forward(target[keep], target_transform)
    if base_feature is not None:
        base = data[:, features.index(base_feature)].astype(float)
        target = target - np.nan_to_num(base, nan=0.0)

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
        base_feature=base_feature,
    )


def interval_widening_fit(
    model: QuantileModel,
    X: pd.DataFrame | np.ndarray,
    y: pd.Series | np.ndarray,
    *,
    coverage: float = INTERVAL_COVERAGE,
) -> IntervalWidening | None:
    """Widening that makes ``model``'s band cover ``coverage`` of (X, y).

    Each side gets its own factor, the (n + 1)-corrected quantile of how far
    the truth fell outside that side, divided by the band's width there
    (scaled conformalised quantile regression). None with too few rows.
    """
    target = np.asarray(y, dtype=float)
    keep = ~np.isnan(target)
    if keep.sum() < MIN_CALIBRATION_ROWS:
        return None
    raw = model.predict_raw(_matrix(X, model.features)[keep]).astype(float)
    truth = target_forward(target[keep], model.target_transform)
    spread = np.maximum(raw[:, 2] - raw[:, 0], 0)
    # A band of width zero (night hours: no car, no doubt) still needs a scale;
    # a tenth of the mean width keeps those hours nearly as tight as they were.
    floor = max(0.1 * float(spread.mean()), 1e-6)
    width = spread + floor
    n = len(truth)
    level = min(1.0, (1 - (1 - coverage) / 2) * (1 + 1 / n))
    lower = max(0.0, float(np.quantile((raw[:, 0] - truth) / width, level)))
    upper = max(0.0, float(np.quantile((truth - raw[:, 2]) / width, level)))
    after = _widen(raw, IntervalWidening(lower, upper, floor, n, 0.0, 0.0))
    return IntervalWidening(
        lower=lower,
        upper=upper,
        floor=floor,
        calibration_rows=n,
        coverage_before=_inside(truth, raw),
        coverage_after=_inside(truth, after.astype(float)),
    )


def _inside(truth: np.ndarray, raw: np.ndarray) -> float:
    return float(100 * np.mean((truth >= raw[:, 0]) & (truth <= raw[:, 2])))


def quantile_model_train(
    X: pd.DataFrame,
    y: pd.Series | np.ndarray,
    *,
    features: list[str],
    params: dict,
    calibration: np.ndarray,
    target_transform: str = "none",
    base_feature: str | None = None,
) -> QuantileModel:
    """Fit on all rows, with a p10-p90 band calibrated on the ``calibration`` rows.

    ``calibration`` marks the latest rows of the training window. A first fit
    on the other rows measures the widening on them; the returned model is
    refitted on every row and carries that widening. ``train_seconds`` counts
    both fits.
    """
    target = np.asarray(y, dtype=float)
    calibration = np.asarray(calibration, dtype=bool)
    options = {
        "features": features,
        "params": params,
        "target_transform": target_transform,
        "base_feature": base_feature,
    }
    started = time.perf_counter()
    widening = None
    if (~np.isnan(target[calibration])).sum() >= MIN_CALIBRATION_ROWS:
        first = quantile_model_fit(X[~calibration], target[~calibration], **options)
        widening = interval_widening_fit(first, X[calibration], target[calibration])
    model = quantile_model_fit(X, target, **options)
    model.widening = widening
    model.train_seconds = time.perf_counter() - started
    return model
