"""What the portal answers: baseline without a model, the model's once promoted."""

import pandas as pd
import pytest

from forecasting.models import BASELINE_LABEL, Forecast, ForecastTask, ModelStatus
from forecasting.selectors import (
    site_demand_forecast,
    tomorrow_energy,
    tomorrow_energy_by_site,
)
from forecasting.services import (
    forecasts_backtest,
    forecasts_predict,
    model_promote,
    model_train,
)
from forecasting.services.history import site_series
from forecasting.serving import serving_cached_ids


def test_without_an_active_model_the_answer_is_the_labelled_baseline(caltech):
    forecast = site_demand_forecast(site=caltech)

    assert forecast.is_baseline is True
    assert forecast.model_version is None
    assert forecast.label == BASELINE_LABEL
    assert len(forecast.rows) == 48
    # The baseline is what happened at the same hour a week before.
    series, end = site_series(site=caltech)
    assert pd.Timestamp(forecast.rows[0].hour_start) == end
    for row in forecast.rows[:30]:
        week_ago = pd.Timestamp(row.hour_start) - pd.Timedelta(days=7)
        assert row.energy_kwh == pytest.approx(series.at[week_ago, "energy_kwh"])
        assert row.p10 <= row.energy_kwh <= row.p90


def test_stored_baseline_forecasts_say_so(caltech):
    written = forecasts_predict(site=caltech)

    assert written == 96  # 48 hours x (energy, plugged in)
    rows = Forecast.objects.filter(site=caltech, task=ForecastTask.SITE_ENERGY)
    assert {r.source for r in rows} == {"baseline"}
    assert {r.label for r in rows} == {BASELINE_LABEL}
    assert all(r.model_version_id is None for r in rows)
    # Safe to run twice: the same origin writes the same rows again.
    assert forecasts_predict(site=caltech) == 96
    assert Forecast.objects.filter(site=caltech).count() == 96
    answer = tomorrow_energy(site=caltech)
    assert answer.is_baseline and answer.label == BASELINE_LABEL
    assert answer.hours == 24 and answer.energy_kwh > 0


def test_after_promotion_forecasts_come_from_the_cached_onnx_session(caltech):
    version = model_train(site=caltech, task=ForecastTask.SITE_ENERGY)
    assert model_promote(model_version=version)[0]

    forecast = site_demand_forecast(site=caltech)
    again = site_demand_forecast(site=caltech)

    assert forecast.is_baseline is False
    assert forecast.model_version == version
    assert forecast.label == version.label
    assert [r.energy_kwh for r in forecast.rows] == [r.energy_kwh for r in again.rows]
    assert all(r.p10 <= r.energy_kwh <= r.p90 for r in forecast.rows)
    assert version.pk in serving_cached_ids()
    # Plugged-in has no model yet: its answer stays the baseline.
    assert forecast.plugged_in_label == BASELINE_LABEL

    version.status = ModelStatus.RETIRED
    version.save()
    assert site_demand_forecast(site=caltech).is_baseline is True


def test_backtest_covers_the_last_two_weeks_from_data_two_days_old(caltech):
    written = forecasts_backtest(site=caltech, days=14)

    rows = Forecast.objects.filter(
        site=caltech, task=ForecastTask.SITE_ENERGY, is_backtest=True
    )
    assert written == 2 * rows.count()
    assert 13 * 24 <= rows.count() <= 14 * 24
    assert all(r.target_hour - r.origin == pd.Timedelta(hours=48) for r in rows)
    assert [t.site.code for t in tomorrow_energy_by_site()] == ["caltech"]


def test_a_tokens_next_day_energy_without_a_model_is_its_labelled_median(
    charge_point,
):
    from datetime import UTC, datetime, timedelta

    from forecasting.selectors import next_day_energy
    from sessions.models import ChargingSession, IdToken

    token = IdToken.objects.create(value="CARD-7")
    monday = datetime(2024, 4, 1, 16, tzinfo=UTC)  # 09:00 in Los Angeles
    # Four Mondays and Tuesdays of 6, 8, 10, 12 kWh (Tuesday 2024-04-23 last).
    for week, kwh in enumerate((6, 8, 10, 12)):
        for day in (0, 1):
            start = monday + timedelta(weeks=week, days=day)
            ChargingSession.objects.create(
                charge_point=charge_point,
                id_token=token,
                started_at=start,
                stopped_at=start + timedelta(hours=8),
                energy_wh=kwh * 1000,
            )

    answer = next_day_energy(id_token=token)

    assert answer.is_baseline and "median" in answer.label
    assert answer.day.isoformat() == "2024-04-24"  # the Wednesday after
    assert answer.charge_probability == 0  # never charged on a Wednesday
    assert answer.session_energy_kwh == 9  # median of 6, 6, 8, 8, 10, 10, 12, 12
    assert answer.energy_kwh == 0
    assert answer.sessions_seen == 8
