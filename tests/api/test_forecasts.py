"""Forecasts, the model registry and a site's next hours over the API."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from forecasting.models import Forecast, ForecastTask, ModelStatus, ModelVersion
from sessions.models import ChargingSession

pytestmark = pytest.mark.django_db
T0 = datetime(2019, 12, 2, 8, tzinfo=UTC)


@pytest.fixture
def registry(site):
    versions = [
        ModelVersion.objects.create(
            task=ForecastTask.SITE_ENERGY,
            site=site,
            version=n,
            status=ModelStatus.ACTIVE if n == 2 else ModelStatus.RETIRED,
            trained_at=T0,
            train_start=T0 - timedelta(days=200),
            train_end=T0 - timedelta(days=30),
            holdout_end=T0,
            features=["hour", "weekday"],
            train_rows=4000,
            holdout_rows=700,
            mae=1.5 - n * 0.1,
            baseline_mae=2.0,
            artifact=b"\x00" * 1000,
            artifact_sha256="0" * 64,
        )
        for n in (1, 2)
    ]
    for hour in range(30):
        Forecast.objects.create(
            site=site,
            task=ForecastTask.SITE_ENERGY,
            target_hour=T0 + timedelta(hours=hour),
            origin=T0,
            value=hour / 2,
            p10=hour / 4,
            p90=hour,
            source="model",
            model_version=versions[1],
            label=versions[1].label,
            made_at=T0,
        )
    return versions


def test_model_versions_list_with_metrics_and_no_artifact(read_only_api, registry):
    response = read_only_api.get(
        "/api/model-versions/", {"site": "campus", "status": "active"}
    )

    rows = response.json()["results"]
    assert response.status_code == 200
    assert [r["version"] for r in rows] == [2]
    assert rows[0]["mae"] == pytest.approx(1.3)
    assert rows[0]["baseline_mae"] == 2.0
    assert rows[0]["label"] == "Site energy per hour (kWh) v2"
    assert "artifact" not in rows[0]


def test_forecast_rows_filter_by_target_hours(read_only_api, registry):
    response = read_only_api.get(
        "/api/forecasts/",
        {
            "site": "campus",
            "task": "site_energy",
            "target_after": (T0 + timedelta(hours=24)).isoformat(),
        },
    )

    rows = response.json()["results"]
    assert [r["value"] for r in rows] == [h / 2 for h in range(24, 30)]
    assert {r["model_version"] for r in rows} == {registry[1].pk}


def test_forecast_lists_take_a_fixed_number_of_queries(
    read_only_api, registry, django_assert_max_num_queries
):
    read_only_api.get("/api/forecasts/")
    for url in ("/api/forecasts/", "/api/model-versions/"):
        with django_assert_max_num_queries(4):
            assert read_only_api.get(url).status_code == 200


def test_a_sites_next_hours_say_when_they_are_the_baseline(read_only_api, site):
    from stations.models import ChargePoint

    cp = ChargePoint.objects.create(identity="CP-9", site=site)
    for day in range(14):
        start = T0 + timedelta(days=day)
        ChargingSession.objects.create(
            charge_point=cp,
            started_at=start,
            stopped_at=start + timedelta(hours=4),
            done_charging_at=start + timedelta(hours=2),
            energy_wh=8000,
        )

    response = read_only_api.get("/api/sites/campus/forecast/", {"hours": 48})

    body = response.json()
    assert response.status_code == 200, body
    assert body["is_baseline"] is True
    assert "naive" in body["label"]
    assert body["model_version"] is None
    assert len(body["rows"]) == 48
    assert body["tomorrow"]["day"] is not None
    assert body["tomorrow"]["energy_kwh"] == pytest.approx(
        sum(
            r["energy_kwh"]
            for r in body["rows"]
            if timezone.localtime(datetime.fromisoformat(r["hour_start"]), site.tz)
            .date()
            .isoformat()
            == body["tomorrow"]["day"]
        )
    )


def test_a_forecast_for_an_unknown_site_is_404(read_only_api, db):
    response = read_only_api.get("/api/sites/atlantis/forecast/")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
