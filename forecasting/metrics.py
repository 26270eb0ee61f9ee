"""Prometheus metrics of forecasting (served on /metrics with the rest).

Labels are site codes, task names and "model"/"baseline"/"seasonal_naive":
small fixed sets.
"""

from prometheus_client import Gauge

FORECAST_ROLLING_MAE = Gauge(
    "giu_forecast_rolling_mae",
    "Mean absolute error of the last 7 scored days of forecasts, by site, task "
    "and source (model, baseline forecasts, seasonal naive on the same hours).",
    ["site", "task", "source"],
)


def _seconds_since_retrain() -> float:
    from forecasting.selectors import seconds_since_last_retrain

    try:
        value = seconds_since_last_retrain()
    except Exception:  # noqa: BLE001 - a scrape must not fail on a DB hiccup
        return float("nan")
    return float("nan") if value is None else value


FORECAST_SECONDS_SINCE_RETRAIN = Gauge(
    "giu_forecast_seconds_since_retrain",
    "Seconds since the last model version was trained (NaN: never).",
)
FORECAST_SECONDS_SINCE_RETRAIN.set_function(_seconds_since_retrain)
