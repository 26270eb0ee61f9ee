"""Site demand forecasts: live (next hours from the latest data) and backtest."""

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from django.db import transaction
from django.utils import timezone

from forecasting.ml.features import FEATURE_HISTORY_DAYS, hourly_features
from forecasting.models import (
    BASELINE_LABEL,
    SITE_TASKS,
    Forecast,
    ForecastSource,
    ForecastTask,
    ModelStatus,
    ModelVersion,
)
from forecasting.services.history import site_series
from forecasting.serving import ArtifactCorrupt, model_predict
from stations.models import Site

logger = logging.getLogger(__name__)

FORECAST_HOURS = 48
BACKTEST_DAYS = 14


@dataclass
class TaskForecast:
    """Forecast of one task over some hours: a frame and who made it."""

    task: str
    origin: pd.Timestamp
    frame: pd.DataFrame  # index hour_start; columns value, p10, p90
    model_version: ModelVersion | None

    @property
    def is_baseline(self) -> bool:
        return self.model_version is None

    @property
    def label(self) -> str:
        return (
            BASELINE_LABEL if self.model_version is None else self.model_version.label
        )


def _baseline(table: pd.DataFrame) -> pd.DataFrame:
    """Seasonal naive: the same hour last week; its band spans the last 4 weeks.

    Where last week's hour is missing (a data gap) the mean of the same hour of
    the last four weeks stands in; hours with neither get no forecast.
    """
    value = table["lag_168"].fillna(table["same_hour_mean_4w"])
    weekly = table[["lag_168", "lag_336"]].copy()
    spread = pd.concat(
        [weekly, table[["same_hour_mean_4w", "same_hour_max_4w"]]], axis=1
    )
    low = spread.min(axis=1)
    high = spread.max(axis=1)
    frame = pd.DataFrame(
        {
            "value": value,
            "p10": np.minimum(low, value),
            "p90": np.maximum(high, value),
        },
        index=table.index,
    )
    return frame[frame["value"].notna()]


def _task_forecast(
    *, site: Site, task: str, series: pd.DataFrame, hours: pd.DatetimeIndex
) -> TaskForecast:
    target = "energy_kwh" if task == ForecastTask.SITE_ENERGY else "plugged_in"
    until = hours[-1] + pd.Timedelta(hours=1)
    history_start = hours[0] - pd.Timedelta(days=FEATURE_HISTORY_DAYS)
    table = hourly_features(
        series[series.index >= history_start],
        target=target,
        time_zone=site.time_zone,
        until=until,
    )
    table = table.loc[table.index.isin(hours)]
    active = ModelVersion.objects.filter(
        site=site, task=task, status=ModelStatus.ACTIVE
    ).first()
    origin = series.index[-1] + pd.Timedelta(hours=1)
    if active is None:
        return TaskForecast(task, origin, _baseline(table), None)

    X = table[active.features].to_numpy(dtype=np.float32)
    try:
        predicted = model_predict(model_version=active, X=X)
    except ArtifactCorrupt:
        # A damaged artifact must not take the page down: answer with the
        # labelled baseline and say so in the log until staff roll back.
        logger.exception(
            "Active model %s cannot be served; answering with the baseline",
            active,
            extra={"model_version": active.pk, "site": site.code},
        )
        return TaskForecast(task, origin, _baseline(table), None)
    frame = pd.DataFrame(predicted, columns=["p10", "value", "p90"], index=table.index)
    return TaskForecast(task, origin, frame, active)


def site_forecast_compute(
    *, site: Site, hours: int = FORECAST_HOURS
) -> dict[str, TaskForecast]:
    """Forecasts of the hours after the site's latest data, per site task."""
    series, end = site_series(site=site)
    if series is None:
        return {}
    target_hours = pd.date_range(end, periods=hours, freq="h")
    return {
        task: _task_forecast(site=site, task=task, series=series, hours=target_hours)
        for task in SITE_TASKS
    }


def _rows_write(
    *, site: Site, forecast: TaskForecast, origins: pd.Series, backtest: bool
) -> int:
    now = timezone.now()
    source = ForecastSource.BASELINE if forecast.is_baseline else ForecastSource.MODEL
    rows = [
        Forecast(
            site=site,
            task=forecast.task,
            target_hour=hour.to_pydatetime(),
            origin=origins[hour].to_pydatetime(),
            value=float(row.value),
            p10=float(row.p10),
            p90=float(row.p90),
            source=source,
            model_version=forecast.model_version,
            label=forecast.label,
            is_backtest=backtest,
            made_at=now,
        )
        for hour, row in forecast.frame.iterrows()
    ]
    Forecast.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["site", "task", "origin", "target_hour", "source"],
        update_fields=[
            "value",
            "p10",
            "p90",
            "model_version",
            "label",
            "is_backtest",
            "made_at",
        ],
        batch_size=1000,
    )
    return len(rows)


def forecasts_predict(*, site: Site, hours: int = FORECAST_HOURS) -> int:
    """Write the forecasts of the next ``hours`` after the site's latest data.

    Safe to run twice: rows are keyed by (site, task, origin, hour, source).
    """
    forecasts = site_forecast_compute(site=site, hours=hours)
    written = 0
    with transaction.atomic():
        for forecast in forecasts.values():
            origins = pd.Series(forecast.origin, index=forecast.frame.index)
            written += _rows_write(
                site=site, forecast=forecast, origins=origins, backtest=False
            )
    logger.info(
        "Wrote %s forecast rows for %s", written, site.code, extra={"site": site.code}
    )
    return written


def forecasts_backtest(*, site: Site, days: int = BACKTEST_DAYS) -> int:
    """Forecasts of the site's last ``days`` days as they would have been made.

    Each hour is forecast from data at least 48 hours older than it (the
    features never look closer), so its origin is the hour minus 48 hours. With
    an active model the window lies inside its holdout, never trained on.
    """
    series, end = site_series(site=site)
    if series is None:
        return 0
    start = max(series.index[0], end - pd.Timedelta(days=days))
    # The last hour of the series holds the latest data and may be partial.
    last_complete = end - pd.Timedelta(hours=1)
    target_hours = pd.date_range(start, last_complete, freq="h", inclusive="left")
    if len(target_hours) == 0:
        return 0
    known = series["missing"].reindex(target_hours).eq(False)
    target_hours = target_hours[known.to_numpy()]
    written = 0
    with transaction.atomic():
        for task in SITE_TASKS:
            forecast = _task_forecast(
                site=site, task=task, series=series, hours=target_hours
            )
            origins = pd.Series(
                forecast.frame.index - pd.Timedelta(hours=48),
                index=forecast.frame.index,
            )
            written += _rows_write(
                site=site, forecast=forecast, origins=origins, backtest=True
            )
    return written
