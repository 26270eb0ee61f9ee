"""The evaluation task against a hand-computed example."""

from datetime import UTC, datetime, timedelta

import pytest

from forecasting.models import (
    Forecast,
    ForecastScore,
    ForecastSource,
    ForecastTask,
    ModelStatus,
    ModelVersion,
)
from forecasting.services.evaluation import WORSE_THAN_BASELINE_DAYS
from forecasting.tasks import evaluate
from sessions.models import ChargingSession
from stations.models import Alert, AlertKind

T0 = datetime(2024, 3, 4, 10, tzinfo=UTC)  # a Monday


def _session(charge_point, start, hours, kwh):
    """A session that charged uniformly for its whole stay (done = departure)."""
    return ChargingSession.objects.create(
        charge_point=charge_point,
        started_at=start,
        stopped_at=start + timedelta(hours=hours),
        done_charging_at=start + timedelta(hours=hours),
        energy_wh=int(kwh * 1000),
    )


def _forecast(site, hour, value, version=None):
    return Forecast.objects.create(
        site=site,
        task=ForecastTask.SITE_ENERGY,
        target_hour=hour,
        origin=hour - timedelta(hours=48),
        value=value,
        p10=0,
        p90=value * 2,
        source=ForecastSource.MODEL if version else ForecastSource.BASELINE,
        model_version=version,
        label="test",
        made_at=hour - timedelta(hours=48),
    )


@pytest.fixture
def week_of_sessions(charge_point):
    # Last week: 6 kWh over 10:00-12:00 (3 kWh per hour).
    _session(charge_point, T0 - timedelta(days=7), 2, 6)
    # This week: 8 kWh over 10:00-12:00 (4 per hour), 5 kWh in 13:00-14:00,
    # and a later session so 10:00-14:00 are complete hours in the data.
    _session(charge_point, T0, 2, 8)
    _session(charge_point, T0 + timedelta(hours=3), 1, 5)
    _session(charge_point, T0 + timedelta(hours=6), 1, 1)
    return charge_point.site


def test_evaluation_matches_the_hand_computed_errors(week_of_sessions):
    site = week_of_sessions
    hours = [T0 + timedelta(hours=h) for h in range(4)]  # 10, 11, 12, 13 UTC
    forecasts = [5.0, 2.0, 1.0, 3.0]
    for hour, value in zip(hours, forecasts, strict=True):
        _forecast(site, hour, value)

    result = evaluate.delay(site_ids=[site.pk]).get()

    assert result == {site.code: {"evaluated": 4, "alert_open": False}}
    actual = {f.target_hour: f.actual for f in Forecast.objects.all()}
    assert [actual[h] for h in hours] == pytest.approx([4, 4, 0, 5])
    baseline = {f.target_hour: f.baseline_value for f in Forecast.objects.all()}
    assert [baseline[h] for h in hours] == pytest.approx([3, 3, 0, 0])
    score = ForecastScore.objects.get(site=site, day=T0.date())
    # |5-4| + |2-4| + |1-0| + |3-5| = 6 over 4 hours.
    assert score.mae == pytest.approx(6 / 4)
    assert score.rmse == pytest.approx(((1 + 4 + 1 + 4) / 4) ** 0.5)
    # Baseline: |3-4| + |3-4| + |0-0| + |0-5| = 7 over 4 hours.
    assert score.baseline_mae == pytest.approx(7 / 4)
    assert score.hours == 4

    # Safe to run twice: nothing left to evaluate, the score is unchanged.
    assert evaluate.delay(site_ids=[site.pk]).get()[site.code]["evaluated"] == 0
    assert ForecastScore.objects.get(site=site, day=T0.date()).mae == score.mae


def test_an_active_model_worse_than_baseline_for_days_opens_an_alert(
    week_of_sessions, operator_client
):
    site = week_of_sessions
    version = ModelVersion.objects.create(
        task=ForecastTask.SITE_ENERGY,
        site=site,
        version=1,
        status=ModelStatus.ACTIVE,
        trained_at=T0,
        train_start=T0 - timedelta(days=60),
        train_end=T0 - timedelta(days=28),
        holdout_end=T0,
        train_rows=1000,
        holdout_rows=600,
        artifact=b"",
        artifact_sha256="0" * 64,
    )
    for day in range(WORSE_THAN_BASELINE_DAYS):
        ForecastScore.objects.create(
            site=site,
            task=ForecastTask.SITE_ENERGY,
            day=(T0 - timedelta(days=day + 1)).date(),
            source=ForecastSource.MODEL,
            model_version=version,
            hours=24,
            mae=5.0,
            rmse=6.0,
            baseline_mae=3.0,
        )

    evaluate.delay(site_ids=[site.pk]).get()

    alert = Alert.objects.get(kind=AlertKind.FORECAST_WORSE_THAN_BASELINE)
    assert alert.resolved_at is None and alert.site == site
    page = operator_client.get(f"/forecasts/{site.code}/")
    assert "worse than the seasonal-naive baseline" in page.content.decode()

    # A good day ends the streak: the alert resolves.
    ForecastScore.objects.create(
        site=site,
        task=ForecastTask.SITE_ENERGY,
        day=T0.date() + timedelta(days=1),
        source=ForecastSource.MODEL,
        model_version=version,
        hours=24,
        mae=2.0,
        rmse=2.5,
        baseline_mae=3.0,
    )
    evaluate.delay(site_ids=[site.pk]).get()
    alert.refresh_from_db()
    assert alert.resolved_at is not None
