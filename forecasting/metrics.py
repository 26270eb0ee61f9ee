"""Prometheus metrics of forecasting (served on /metrics with the rest).

The forecast error per site and task is read from the database at scrape
time by giu_ev.collectors (giu_forecast_mae), so every web process reports it.
"""

from prometheus_client import Gauge


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
