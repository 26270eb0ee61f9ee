"""Error measures of point forecasts and of p10-p90 intervals."""

import numpy as np


def _pair(actual, predicted) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(actual, dtype=float)
    p = np.asarray(predicted, dtype=float)
    keep = ~(np.isnan(a) | np.isnan(p))
    return a[keep], p[keep]


def mae(actual, predicted) -> float:
    a, p = _pair(actual, predicted)
    return float(np.mean(np.abs(a - p))) if len(a) else float("nan")


def rmse(actual, predicted) -> float:
    a, p = _pair(actual, predicted)
    return float(np.sqrt(np.mean((a - p) ** 2))) if len(a) else float("nan")


def smape(actual, predicted) -> float:
    """Symmetric MAPE in percent; pairs where both are zero count as no error."""
    a, p = _pair(actual, predicted)
    if not len(a):
        return float("nan")
    denominator = (np.abs(a) + np.abs(p)) / 2
    ratio = np.divide(
        np.abs(a - p), denominator, out=np.zeros_like(a), where=denominator > 0
    )
    return float(100 * np.mean(ratio))


def wape(actual, predicted) -> float:
    """Weighted absolute percentage error: sum |error| / sum |actual|, percent."""
    a, p = _pair(actual, predicted)
    total = np.sum(np.abs(a))
    return float(100 * np.sum(np.abs(a - p)) / total) if total > 0 else float("nan")


def coverage(actual, low, high) -> float:
    """Share (percent) of actual values inside [low, high]."""
    a = np.asarray(actual, dtype=float)
    lo = np.asarray(low, dtype=float)
    hi = np.asarray(high, dtype=float)
    keep = ~(np.isnan(a) | np.isnan(lo) | np.isnan(hi))
    if not keep.any():
        return float("nan")
    return float(100 * np.mean((a[keep] >= lo[keep]) & (a[keep] <= hi[keep])))


def point_metrics(actual, predicted) -> dict[str, float]:
    return {
        "mae": mae(actual, predicted),
        "rmse": rmse(actual, predicted),
        "smape": smape(actual, predicted),
        "wape": wape(actual, predicted),
        "n": int(len(_pair(actual, predicted)[0])),
    }
