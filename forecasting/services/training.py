"""Train a model version on a site's history and register it."""

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from forecasting.ml import metrics as ml_metrics
from forecasting.ml.features import (
    HOURLY_BASE_FEATURE,
    HOURLY_FEATURES,
    SESSION_FEATURES,
    hourly_features,
    session_features,
)
from forecasting.ml.frames import sessions_clean
from forecasting.ml.onnx_export import (
    onnx_max_abs_diff,
    quantile_model_to_onnx,
    sha256_hex,
)
from forecasting.ml.training import (
    HOURLY_PARAMS,
    SESSION_PARAMS,
    SESSION_TARGET_TRANSFORM,
    quantile_model_train,
)
from forecasting.models import (
    BASELINE_LABEL,
    SITE_TASKS,
    ForecastTask,
    ModelStatus,
    ModelVersion,
)
from forecasting.services.history import site_series, site_sessions_frame
from forecasting.serving import model_predict
from stations.models import Site

logger = logging.getLogger(__name__)

# Two years: hourly patterns need a year, and a second one gives the trees
# demand levels to learn from (on ACN-Data one year held only the 2021 COVID
# lull at JPL and the model could not follow the return to the office). Hours
# inside data gaps are not counted. Nightly training stays under a minute per
# site on 2 cores (see docs/forecasting.md).
TRAIN_DAYS = 730
# The holdout is the most recent four weeks: every weekday four times, and the
# two-week backtest on the forecasts page lies inside it.
HOLDOUT_DAYS = 28
# The p10-p90 band is calibrated on the last four weeks before the holdout
# (split conformal: see forecasting/ml/training.py); the holdout stays unseen.
CALIBRATION_DAYS = 28
# Fewer rows than this and a model learns nothing a baseline does not know.
MIN_TRAIN_HOURS = 24 * 28
MIN_TRAIN_SESSIONS = 200
MIN_HOLDOUT_SESSIONS = 30
SESSION_BASELINE_LABEL = "history mean (token's last 5 sessions, else site's)"


class NotEnoughHistory(ValueError):
    """The site has too little history in the window to train this task."""


@dataclass
class Dataset:
    features: list[str]
    X_train: pd.DataFrame
    y_train: np.ndarray
    calibration: np.ndarray  # rows of X_train the p10-p90 band is calibrated on
    X_holdout: pd.DataFrame
    y_holdout: np.ndarray
    baseline_holdout: np.ndarray
    train_start: pd.Timestamp
    train_end: pd.Timestamp
    holdout_end: pd.Timestamp
    params: dict
    target_transform: str
    baseline_label: str
    base_feature: str | None = None


def _hourly_dataset(*, site: Site, task: str, frame: pd.DataFrame) -> Dataset:
    series, end = site_series(site=site, frame=frame)
    if series is None:
        raise NotEnoughHistory("no sessions")
    target = "energy_kwh" if task == ForecastTask.SITE_ENERGY else "plugged_in"
    table = hourly_features(series, target=target, time_zone=site.time_zone, until=end)
    table = table[table["target"].notna()]
    start = max(table.index[0], end - pd.Timedelta(days=TRAIN_DAYS))
    holdout_start = end - pd.Timedelta(days=HOLDOUT_DAYS)
    train = table[(table.index >= start) & (table.index < holdout_start)]
    # Scored only where the baseline exists, so both are judged on the same hours.
    holdout = table[(table.index >= holdout_start) & table["lag_168"].notna()]
    if len(train) < MIN_TRAIN_HOURS or len(holdout) < 24 * 7:
        raise NotEnoughHistory(
            f"{len(train)} training hours and {len(holdout)} holdout hours"
        )
    calibration_start = holdout_start - pd.Timedelta(days=CALIBRATION_DAYS)
    return Dataset(
        features=list(HOURLY_FEATURES),
        X_train=train,
        y_train=train["target"].to_numpy(),
        calibration=np.asarray(train.index >= calibration_start),
        X_holdout=holdout,
        y_holdout=holdout["target"].to_numpy(),
        baseline_holdout=holdout["lag_168"].to_numpy(),
        train_start=start,
        train_end=holdout_start,
        holdout_end=end,
        params=HOURLY_PARAMS,
        target_transform="none",
        baseline_label=BASELINE_LABEL,
        base_feature=HOURLY_BASE_FEATURE,
    )


def _session_dataset(*, site: Site, task: str, frame: pd.DataFrame) -> Dataset:
    sessions = sessions_clean(frame)
    if sessions.empty:
        raise NotEnoughHistory("no finished sessions")
    table, targets = session_features(sessions, time_zone=site.time_zone)
    column = "energy_kwh" if task == ForecastTask.SESSION_ENERGY else "duration_h"
    y = targets[column].to_numpy()
    started = pd.DatetimeIndex(sessions["started_at"])
    end = started.max() + pd.Timedelta(seconds=1)
    start = max(started.min(), end - pd.Timedelta(days=TRAIN_DAYS))
    holdout_start = end - pd.Timedelta(days=HOLDOUT_DAYS)
    in_train = np.asarray((started >= start) & (started < holdout_start))
    in_holdout = np.asarray(started >= holdout_start)
    if in_train.sum() < MIN_TRAIN_SESSIONS or in_holdout.sum() < MIN_HOLDOUT_SESSIONS:
        raise NotEnoughHistory(
            f"{in_train.sum()} training and {in_holdout.sum()} holdout sessions"
        )
    prefix = "token_energy" if column == "energy_kwh" else "token_duration"
    site_prefix = "site_energy" if column == "energy_kwh" else "site_duration"
    baseline = table[f"{prefix}_mean_5"].fillna(table[f"{site_prefix}_mean_200"])
    calibration_start = holdout_start - pd.Timedelta(days=CALIBRATION_DAYS)
    return Dataset(
        features=list(SESSION_FEATURES),
        X_train=table[in_train],
        y_train=y[in_train],
        calibration=np.asarray(started[in_train] >= calibration_start),
        X_holdout=table[in_holdout],
        y_holdout=y[in_holdout],
        baseline_holdout=baseline[in_holdout].to_numpy(),
        train_start=start,
        train_end=holdout_start,
        holdout_end=end,
        params=SESSION_PARAMS,
        target_transform=SESSION_TARGET_TRANSFORM,
        baseline_label=SESSION_BASELINE_LABEL,
    )


def dataset_build(*, site: Site, task: str, frame: pd.DataFrame | None = None):
    """Training and holdout rows of ``task`` at ``site`` (raises NotEnoughHistory)."""
    if frame is None:
        frame = site_sessions_frame(site=site)
    if task in SITE_TASKS:
        return _hourly_dataset(site=site, task=task, frame=frame)
    return _session_dataset(site=site, task=task, frame=frame)


def _active_mae_on(dataset: Dataset, *, site: Site, task: str) -> float | None:
    """MAE of the active version on this holdout (None if none, or if it reads
    columns this dataset does not have)."""
    active = ModelVersion.objects.filter(
        site=site, task=task, status=ModelStatus.ACTIVE
    ).first()
    if active is None or not set(active.features) <= set(dataset.X_holdout.columns):
        return None
    X = dataset.X_holdout[active.features].to_numpy(dtype=np.float32)
    predicted = model_predict(model_version=active, X=X)[:, 1]
    return ml_metrics.mae(dataset.y_holdout, predicted)


def _clean(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def model_train(
    *, site: Site, task: str, frame: pd.DataFrame | None = None
) -> ModelVersion:
    """Train ``task`` for ``site``, export to ONNX and store a candidate version."""
    dataset = dataset_build(site=site, task=task, frame=frame)

    model = quantile_model_train(
        dataset.X_train,
        dataset.y_train,
        features=dataset.features,
        params=dataset.params,
        calibration=dataset.calibration,
        target_transform=dataset.target_transform,
        base_feature=dataset.base_feature,
    )
    X_holdout = dataset.X_holdout[dataset.features].to_numpy(dtype=np.float32)
    predicted = model.predict(X_holdout)
    blob = quantile_model_to_onnx(model)
    max_diff = onnx_max_abs_diff(model, blob, X_holdout)
    scores = ml_metrics.point_metrics(dataset.y_holdout, predicted[:, 1])
    baseline = ml_metrics.point_metrics(dataset.y_holdout, dataset.baseline_holdout)
    coverage = ml_metrics.coverage(dataset.y_holdout, predicted[:, 0], predicted[:, 2])
    extra = {"active_mae_on_holdout": _active_mae_on(dataset, site=site, task=task)}
    if task in SITE_TASKS:
        extra["four_week_mean_mae"] = ml_metrics.mae(
            dataset.y_holdout, dataset.X_holdout["same_hour_mean_4w"].to_numpy()
        )

    with transaction.atomic():
        latest = (
            ModelVersion.objects.select_for_update()
            .filter(site=site, task=task)
            .aggregate(v=Max("version"))["v"]
        )
        version = ModelVersion.objects.create(
            task=task,
            site=site,
            version=(latest or 0) + 1,
            trained_at=timezone.now(),
            train_start=dataset.train_start,
            train_end=dataset.train_end,
            holdout_end=dataset.holdout_end,
            features=dataset.features,
            target_transform=dataset.target_transform,
            params=model.describe(),
            train_rows=int(np.isfinite(dataset.y_train).sum()),
            holdout_rows=int(len(dataset.y_holdout)),
            train_seconds=model.train_seconds,
            mae=_clean(scores["mae"]),
            rmse=_clean(scores["rmse"]),
            smape=_clean(scores["smape"]),
            wape=_clean(scores["wape"]),
            interval_coverage=_clean(coverage),
            baseline_label=dataset.baseline_label,
            baseline_mae=_clean(baseline["mae"]),
            baseline_rmse=_clean(baseline["rmse"]),
            baseline_smape=_clean(baseline["smape"]),
            baseline_wape=_clean(baseline["wape"]),
            metrics={k: _clean(v) for k, v in extra.items()},
            artifact=blob,
            artifact_sha256=sha256_hex(blob),
            artifact_bytes=len(blob),
            onnx_max_abs_diff=max_diff,
        )
    logger.info(
        "Trained %s: holdout MAE %.3f (baseline %.3f), ONNX max diff %.2e",
        version,
        version.mae or float("nan"),
        version.baseline_mae or float("nan"),
        max_diff,
        extra={"model_version": version.pk, "site": site.code},
    )
    return version


@dataclass
class TrainOutcome:
    site: Site
    task: str
    version: ModelVersion | None
    promoted: bool
    message: str


def models_train(
    *,
    sites=None,
    tasks=None,
    promote: bool = True,
    progress: Callable[[TrainOutcome], None] | None = None,
) -> list[TrainOutcome]:
    """Train every task of every site (or the given ones), promoting winners."""
    from forecasting.services.registry import model_promote

    sites = list(sites if sites is not None else Site.objects.all())
    tasks = list(tasks or ForecastTask.values)
    outcomes = []
    for site in sites:
        frame = site_sessions_frame(site=site)
        for task in tasks:
            try:
                version = model_train(site=site, task=task, frame=frame)
            except NotEnoughHistory as exc:
                outcome = TrainOutcome(site, task, None, False, f"skipped: {exc}")
            else:
                promoted, reason = (
                    model_promote(model_version=version) if promote else (False, "")
                )
                outcome = TrainOutcome(site, task, version, promoted, reason)
            outcomes.append(outcome)
            if progress is not None:
                progress(outcome)
    return outcomes
