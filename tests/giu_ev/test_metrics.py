"""/metrics as Prometheus scrapes it: domain gauges read from the database,
counters of Celery tasks, django-prometheus' request and database metrics."""

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from sessions.models import ChargingSession
from stations.models import ChargePoint, Connector, Site

# Labels a domain metric may carry: they grow with the network, not with traffic.
BOUNDED_LABELS = {
    "site",
    "status",
    "charge_point",
    "connector",
    "direction",
    "action",
    "code",
    "outcome",
    "task",
    "source",
    "metric",
    "le",
}


def scrape(client) -> dict[str, dict[tuple, float]]:
    """{sample name: {sorted label items: value}} of one scrape."""
    response = client.get("/metrics")
    assert response.status_code == 200
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            key = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[key] = sample.value
    return samples


def value(samples, name: str, **labels) -> float | None:
    return samples.get(name, {}).get(tuple(sorted(labels.items())))


@pytest.fixture
def network(db):
    now = timezone.now()
    north = Site.objects.create(code="north", name="North depot")
    south = Site.objects.create(code="south", name="South garage")
    cp1 = ChargePoint.objects.create(
        identity="N-1",
        site=north,
        status="Available",
        is_connected=True,
        last_heartbeat_at=now - timedelta(seconds=30),
    )
    cp2 = ChargePoint.objects.create(
        identity="N-2",
        site=north,
        status="Faulted",
        is_connected=False,
        last_seen_at=now - timedelta(hours=2),
    )
    ChargePoint.objects.create(identity="S-1", site=south, status="Unknown")
    Connector.objects.create(charge_point=cp1, number=1, status="Charging")
    Connector.objects.create(charge_point=cp1, number=2, status="Available")
    Connector.objects.create(
        charge_point=cp2,
        number=1,
        status="Faulted",
        status_updated_at=now - timedelta(minutes=40),
    )
    ChargingSession.objects.create(
        charge_point=cp1, connector_number=1, started_at=now - timedelta(minutes=20)
    )
    ChargingSession.objects.create(
        charge_point=cp1,
        connector_number=2,
        started_at=now - timedelta(hours=3),
        stopped_at=now - timedelta(hours=2),
        energy_wh=12000,
    )
    ChargingSession.objects.create(
        charge_point=cp2,
        connector_number=1,
        started_at=now - timedelta(days=300),
        source="import",
    )
    return north, south


def test_charger_gauges_count_what_is_in_the_database(client, network):
    samples = scrape(client)

    assert value(samples, "giu_chargers_connected", site="north") == 1
    assert value(samples, "giu_chargers_connected", site="south") == 0
    assert value(samples, "giu_chargers", site="north", status="Available") == 1
    assert value(samples, "giu_chargers", site="north", status="Faulted") == 1
    assert value(samples, "giu_chargers", site="north", status="Charging") == 0
    assert value(samples, "giu_chargers", site="south", status="Unknown") == 1
    assert (
        value(samples, "giu_charger_connected", site="north", charge_point="N-1") == 1
    )
    assert (
        value(samples, "giu_charger_connected", site="north", charge_point="N-2") == 0
    )


def test_connector_and_session_gauges(client, network):
    samples = scrape(client)

    assert value(samples, "giu_connectors", site="north", status="Charging") == 1
    assert value(samples, "giu_connectors", site="north", status="Faulted") == 1
    assert value(samples, "giu_connectors", site="south", status="Faulted") == 0
    faulted_s = value(
        samples,
        "giu_connector_faulted_seconds",
        site="north",
        charge_point="N-2",
        connector="1",
    )
    assert 40 * 60 <= faulted_s < 41 * 60
    # One OCPP session in progress; the imported one without a stop is history.
    assert value(samples, "giu_active_sessions", site="north") == 1
    assert value(samples, "giu_active_sessions", site="south") == 0


def test_site_heartbeat_age_uses_the_newest_frame_of_any_charger(client, network):
    samples = scrape(client)

    age_s = value(samples, "giu_site_heartbeat_age_seconds", site="north")
    assert 30 <= age_s < 90
    # No charger of the south site was ever heard from: no series to alert on.
    assert value(samples, "giu_site_heartbeat_age_seconds", site="south") is None


def test_gauges_follow_changes_between_scrapes(client, network):
    ChargePoint.objects.filter(identity="N-2").update(is_connected=True)
    ChargingSession.objects.filter(stopped_at__isnull=True).update(
        stopped_at=timezone.now()
    )

    samples = scrape(client)

    assert value(samples, "giu_chargers_connected", site="north") == 2
    assert value(samples, "giu_active_sessions", site="north") == 0


def test_a_scrape_costs_a_fixed_number_of_queries(
    client, network, django_assert_max_num_queries
):
    for n in range(30):
        cp = ChargePoint.objects.create(identity=f"X-{n}", site=network[0])
        Connector.objects.create(charge_point=cp, number=1, status="Faulted")

    with django_assert_max_num_queries(10):
        scrape(client)


def test_celery_task_runs_are_counted_by_outcome(client, network):
    from stations.tasks import site_silence_check

    before = scrape(client)
    site_silence_check.delay()
    site_silence_check.delay()
    after = scrape(client)

    labels = {"task": "stations.tasks.site_silence_check", "outcome": "success"}
    runs_before = value(before, "giu_celery_tasks_total", **labels) or 0
    assert value(after, "giu_celery_tasks_total", **labels) == runs_before + 2
    count_before = (
        value(
            before,
            "giu_celery_task_duration_seconds_count",
            task=labels["task"],
        )
        or 0
    )
    assert (
        value(after, "giu_celery_task_duration_seconds_count", task=labels["task"])
        == count_before + 2
    )


def test_database_and_request_metrics_of_django_prometheus(client, network):
    client.get("/healthz")
    samples = scrape(client)

    from django.db import connection

    # The engine is django-prometheus' wrapper of the configured backend.
    vendors = {dict(k).get("vendor") for k in samples["django_db_execute_total"]}
    assert connection.vendor in vendors
    assert samples["django_http_requests_before_middlewares_total"]


def test_the_web_tier_leaves_the_database_gauges_to_the_http_tier(
    client, network, settings, django_assert_num_queries
):
    """Daphne behind the proxy runs with METRICS_DOMAIN_GAUGES=0: a panel that
    sums a gauge over every target counts each charger once, from http."""
    settings.METRICS_DOMAIN_GAUGES = False

    with django_assert_num_queries(0):
        samples = scrape(client)

    assert not {
        name
        for name in samples
        if name.startswith(
            ("giu_chargers", "giu_charger_", "giu_connector", "giu_site_", "giu_active")
        )
        or name.startswith(("giu_forecast_", "giu_metrics_source_up"))
    }
    # Its own counters stay: requests, and what the chargers' sockets count.
    assert samples["django_http_requests_before_middlewares_total"]
    text = client.get("/metrics").content.decode()
    assert "# TYPE giu_ocpp_frames_total counter" in text


def test_domain_metrics_carry_only_bounded_labels(client, network):
    samples = scrape(client)

    giu_labels = {
        label
        for name, series in samples.items()
        if name.startswith("giu_")
        for key in series
        for label, _ in key
    }
    assert giu_labels <= BOUNDED_LABELS
    assert not giu_labels & {"session", "transaction", "id_tag", "token"}


def test_a_database_error_marks_the_source_down_and_keeps_the_rest(network):
    from django.db import DatabaseError

    from giu_ev.collectors import DomainCollector, charger_metrics

    def session_metrics():
        raise DatabaseError("relation does not exist")

    collector = DomainCollector(sources=(charger_metrics, session_metrics))

    families = {family.name: family for family in collector.collect()}
    up = {
        s.labels["source"]: s.value for s in families["giu_metrics_source_up"].samples
    }
    assert up == {"charger_metrics": 1, "session_metrics": 0}
    assert "giu_chargers" in families


def _model_version(
    site, *, task="site_energy", version=3, status="active", hours_ago=5
):
    from forecasting.models import ModelVersion

    now = timezone.now()
    return ModelVersion.objects.create(
        site=site,
        task=task,
        version=version,
        status=status,
        trained_at=now - timedelta(hours=hours_ago),
        train_start=now - timedelta(days=200),
        train_end=now - timedelta(days=20),
        holdout_end=now - timedelta(days=1),
        train_rows=4000,
        holdout_rows=400,
        artifact=b"onnx",
        artifact_sha256="0" * 64,
    )


def test_forecast_error_of_the_active_model_and_time_since_retrain(client, network):
    from forecasting.models import ForecastScore

    north = network[0]
    active = _model_version(north, version=3, hours_ago=5)
    _model_version(north, version=2, status="retired", hours_ago=30)
    today = timezone.now().date()
    # Two scored days: 10 h with MAE 2.0 and 30 h with MAE 4.0 (baseline 3.0, 5.0).
    for days_ago, hours, mae, baseline in ((1, 10, 2.0, 3.0), (2, 30, 4.0, 5.0)):
        ForecastScore.objects.create(
            site=north,
            task="site_energy",
            day=today - timedelta(days=days_ago),
            source="model",
            model_version=active,
            hours=hours,
            mae=mae,
            rmse=mae,
            baseline_mae=baseline,
        )

    samples = scrape(client)

    labels = {"site": "north", "task": "site_energy"}
    assert value(samples, "giu_forecast_mae", source="model", **labels) == 3.5
    assert value(samples, "giu_forecast_mae", source="seasonal_naive", **labels) == 4.5
    assert value(samples, "giu_forecast_active_model_version", **labels) == 3
    age_s = value(samples, "giu_forecast_seconds_since_retrain")
    assert 5 * 3600 <= age_s < 5 * 3600 + 120
