"""Score past forecasts against what happened; alert when the model is worse.

For every forecast whose hour is complete in the data, ``actual`` (from the
hourly series, spread as in ``forecasting.ml.series``) and ``baseline_value``
(the same hour a week before) are stored. Daily scores per site, task and model
version (or baseline) are then recomputed from all evaluated rows of the days
touched. Forecasts of hours inside a data gap are left unevaluated.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pandas as pd
from django.db import transaction
from django.utils import timezone

from forecasting.models import (
    SITE_TASKS,
    Forecast,
    ForecastScore,
    ForecastTask,
    ModelStatus,
    ModelVersion,
)
from forecasting.services.history import site_series
from stations.alerts import alert_open, alert_resolve
from stations.models import AlertKind, Site

logger = logging.getLogger(__name__)

# Days in a row the active model must do worse than the baseline before an
# alert opens: one bad day happens (a holiday the calendar does not know);
# three is a pattern worth a retrain or a roll-back.
WORSE_THAN_BASELINE_DAYS = 3
# Window of the rolling error shown per model version.
ROLLING_DAYS = 7


@dataclass
class EvaluationSummary:
    site: str
    evaluated: int
    days_scored: int
    alert_open: bool


def forecast_alert_subject(*, site: Site, task: str) -> str:
    return f"site:{site.code}:{task}"


def _scores_recompute(*, site: Site, task: str, days: set) -> int:
    rows = Forecast.objects.filter(
        site=site,
        task=task,
        evaluated_at__isnull=False,
        actual__isnull=False,
        target_hour__date__in=days,
    ).values_list(
        "target_hour", "source", "model_version_id", "value", "actual", "baseline_value"
    )
    groups: dict[tuple, list] = defaultdict(list)
    for hour, source, version_id, value, actual, baseline in rows:
        groups[(hour.date(), source, version_id)].append((value, actual, baseline))

    for (day, source, version_id), values in groups.items():
        data = np.array(values, dtype=float)
        errors = data[:, 0] - data[:, 1]
        with_baseline = ~np.isnan(data[:, 2])
        baseline_mae = (
            float(np.mean(np.abs(data[with_baseline, 2] - data[with_baseline, 1])))
            if with_baseline.any()
            else None
        )
        lookup = {"site": site, "task": task, "day": day}
        if version_id is None:
            lookup["source"] = source
        else:
            lookup["model_version_id"] = version_id
        ForecastScore.objects.update_or_create(
            **lookup,
            defaults={
                "source": source,
                "hours": len(values),
                "mae": float(np.mean(np.abs(errors))),
                "rmse": float(np.sqrt(np.mean(errors**2))),
                "baseline_mae": baseline_mae,
            },
        )
    return len(groups)


def _worse_than_baseline(*, site: Site, task: str) -> tuple[bool, ModelVersion | None]:
    """True if the active version did worse than the baseline on each of the
    last WORSE_THAN_BASELINE_DAYS scored days."""
    active = ModelVersion.objects.filter(
        site=site, task=task, status=ModelStatus.ACTIVE
    ).first()
    if active is None:
        return False, None
    recent = list(
        ForecastScore.objects.filter(
            site=site, task=task, model_version=active, baseline_mae__isnull=False
        ).order_by("-day")[:WORSE_THAN_BASELINE_DAYS]
    )
    if len(recent) < WORSE_THAN_BASELINE_DAYS:
        return False, active
    return all(score.mae > score.baseline_mae for score in recent), active


def forecasts_evaluate(*, site: Site) -> EvaluationSummary:
    """Fill in what happened for finished forecast hours; rescore; alert."""
    series, end = site_series(site=site)
    pending = Forecast.objects.filter(
        site=site, task__in=SITE_TASKS, evaluated_at__isnull=True
    )
    if series is not None:
        pending = pending.filter(target_hour__lt=end - pd.Timedelta(hours=1))
    pending = list(pending.only("pk", "task", "target_hour"))

    touched: dict[str, set] = defaultdict(set)
    updated = []
    now = timezone.now()
    if series is not None and pending:
        known = series[~series["missing"]]
        for forecast in pending:
            column = (
                "energy_kwh"
                if forecast.task == ForecastTask.SITE_ENERGY
                else "plugged_in"
            )
            hour = pd.Timestamp(forecast.target_hour)
            if hour not in known.index:
                continue
            week_ago = hour - pd.Timedelta(days=7)
            forecast.actual = float(known.at[hour, column])
            forecast.baseline_value = (
                float(known.at[week_ago, column]) if week_ago in known.index else None
            )
            forecast.evaluated_at = now
            updated.append(forecast)
            touched[forecast.task].add(hour.date())

    with transaction.atomic():
        Forecast.objects.bulk_update(
            updated, ["actual", "baseline_value", "evaluated_at"], batch_size=1000
        )
        days_scored = sum(
            _scores_recompute(site=site, task=task, days=days)
            for task, days in touched.items()
        )

    alerting = False
    for task in SITE_TASKS:
        worse, active = _worse_than_baseline(site=site, task=task)
        subject = forecast_alert_subject(site=site, task=task)
        if worse:
            alerting = True
            alert_open(
                kind=AlertKind.FORECAST_WORSE_THAN_BASELINE,
                subject=subject,
                site=site,
                message=(
                    f"{active.label} at {site.name} has done worse than the "
                    f"seasonal-naive baseline for {WORSE_THAN_BASELINE_DAYS} days "
                    "in a row. Retrain or roll back."
                ),
            )
        else:
            alert_resolve(kind=AlertKind.FORECAST_WORSE_THAN_BASELINE, subject=subject)
    return EvaluationSummary(site.code, len(updated), days_scored, alerting)
