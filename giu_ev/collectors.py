"""Gauges read from the database each time /metrics is scraped.

State that lives in the database (which chargers are connected, connector
status, open sessions, the accuracy of the active forecast model) is read at
scrape time, so any process reports the same truth and nothing has to be kept
in step by hand. giu_ev/exposition.py decides which processes export these
(the `http` tier in production). Counters of events (frames, commands,
energy, Celery tasks) are in giu_ev/metrics.py.

Labels are sites, charge point identities, connector numbers, OCPP statuses
and forecast tasks: sets that grow with the network, never with traffic.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

from django.db import DatabaseError
from django.db.models import Count, Max, Q
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from stations.models import ChargePoint, ChargePointStatus, Connector, Site

logger = logging.getLogger(__name__)

# Every status is exported for every site, zeros included, so that a panel or
# a rule sees a series go to 0 instead of disappearing.
STATUSES = [choice.value for choice in ChargePointStatus]


def _family(name: str, documentation: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=labels)


def charger_metrics() -> Iterator[Metric]:
    """giu_chargers{site,status}, giu_chargers_connected{site}, per-charger up."""
    by_status = _family(
        "giu_chargers",
        "Charge points by site and status of connector 0 (the charger itself).",
        ["site", "status"],
    )
    connected = _family(
        "giu_chargers_connected",
        "Charge points with an open OCPP WebSocket, by site.",
        ["site"],
    )
    up = _family(
        "giu_charger_connected",
        "1 if the charge point has an open OCPP WebSocket, else 0; only charge "
        "points that have connected at least once (not imported history).",
        ["site", "charge_point"],
    )

    counts: dict[tuple[str, str], int] = {}
    connected_by_site: dict[str, int] = {}
    rows = ChargePoint.objects.values_list(
        "site__code", "identity", "status", "is_connected", "last_seen_at"
    ).order_by()
    for site, identity, status, is_connected, last_seen_at in rows:
        counts[(site, status)] = counts.get((site, status), 0) + 1
        connected_by_site[site] = connected_by_site.get(site, 0) + int(is_connected)
        if is_connected or last_seen_at is not None:
            up.add_metric([site, identity], int(is_connected))

    for site in Site.objects.values_list("code", flat=True).order_by("code"):
        for status in STATUSES:
            by_status.add_metric([site, status], counts.get((site, status), 0))
        connected.add_metric([site], connected_by_site.get(site, 0))
    yield from (by_status, connected, up)


def connector_metrics(now=None) -> Iterator[Metric]:
    """giu_connectors{site,status} and how long each faulted connector has been."""
    now = now or timezone.now()
    by_status = _family(
        "giu_connectors", "Connectors by site and OCPP status.", ["site", "status"]
    )
    faulted = _family(
        "giu_connector_faulted_seconds",
        "Seconds since a connector reported Faulted; only faulted connectors.",
        ["site", "charge_point", "connector"],
    )

    counts = {
        (row["charge_point__site__code"], row["status"]): row["n"]
        for row in Connector.objects.values("charge_point__site__code", "status")
        .annotate(n=Count("id"))
        .order_by()
    }
    for site in Site.objects.values_list("code", flat=True).order_by("code"):
        for status in STATUSES:
            by_status.add_metric([site, status], counts.get((site, status), 0))

    rows = Connector.objects.filter(status=ChargePointStatus.FAULTED).values_list(
        "charge_point__site__code",
        "charge_point__identity",
        "number",
        "status_updated_at",
    )
    for site, identity, number, since in rows:
        age_s = (now - since).total_seconds() if since else 0.0
        faulted.add_metric([site, identity, str(number)], max(age_s, 0.0))
    yield from (by_status, faulted)


def site_heartbeat_metrics(now=None) -> Iterator[Metric]:
    """Seconds since any charger of a site was last heard from."""
    now = now or timezone.now()
    age = _family(
        "giu_site_heartbeat_age_seconds",
        "Seconds since the newest heartbeat (or any frame) from a charger of "
        "the site; sites whose chargers were never heard from are left out.",
        ["site"],
    )
    rows = (
        Site.objects.annotate(
            last_heartbeat=Max("charge_points__last_heartbeat_at"),
            last_seen=Max("charge_points__last_seen_at"),
        )
        .filter(Q(last_heartbeat__isnull=False) | Q(last_seen__isnull=False))
        .values_list("code", "last_heartbeat", "last_seen")
        .order_by()
    )
    for site, last_heartbeat, last_seen in rows:
        newest = max(t for t in (last_heartbeat, last_seen) if t is not None)
        age.add_metric([site], max((now - newest).total_seconds(), 0.0))
    yield age


def session_metrics() -> Iterator[Metric]:
    """giu_active_sessions{site}: OCPP transactions started and not stopped."""
    from sessions.models import ChargingSession, SessionSource

    active = _family(
        "giu_active_sessions", "Charging sessions in progress, by site.", ["site"]
    )
    counts = dict(
        ChargingSession.objects.filter(
            stopped_at__isnull=True, source=SessionSource.OCPP
        )
        .values_list("charge_point__site__code")
        .annotate(n=Count("id"))
        .order_by()
    )
    for site in Site.objects.values_list("code", flat=True).order_by("code"):
        active.add_metric([site], counts.get(site, 0))
    yield active


def forecast_metrics() -> Iterator[Metric]:
    """Live error of each active model and of the seasonal-naive baseline.

    The rolling mean absolute error over the last scored days (forecasting's
    ``version_rolling_score``), read at scrape time so that any process
    shows it, whichever worker process scored the forecasts.
    """
    from forecasting.models import ModelStatus, ModelVersion
    from forecasting.selectors import version_rolling_score

    mae = _family(
        "giu_forecast_mae",
        "Rolling mean absolute error of the active model's live forecasts "
        "(source=model) and of the seasonal-naive baseline on the same hours "
        "(source=seasonal_naive), by site and task, in the task's unit.",
        ["site", "task", "source"],
    )
    version = _family(
        "giu_forecast_active_model_version",
        "Version number of the active model, by site and task.",
        ["site", "task"],
    )
    active = ModelVersion.objects.filter(status=ModelStatus.ACTIVE).select_related(
        "site"
    )
    for model_version in active:
        labels = [model_version.site.code, model_version.task]
        version.add_metric(labels, model_version.version)
        score = version_rolling_score(model_version=model_version)
        if score.rolling_mae is not None:
            mae.add_metric([*labels, "model"], score.rolling_mae)
        if score.rolling_baseline_mae is not None:
            mae.add_metric([*labels, "seasonal_naive"], score.rolling_baseline_mae)
    yield from (mae, version)


SOURCES = (
    charger_metrics,
    connector_metrics,
    site_heartbeat_metrics,
    session_metrics,
    forecast_metrics,
)


class DomainCollector(Collector):
    """Reads the database at scrape time; one failing source does not hide others."""

    def __init__(self, sources: Iterable = SOURCES) -> None:
        self.sources = tuple(sources)

    def describe(self) -> list[Metric]:
        # Registering must not touch the database (it runs at start-up).
        return []

    def collect(self) -> Iterator[Metric]:
        up = _family(
            "giu_metrics_source_up",
            "1 if the metrics source could be read at this scrape, else 0.",
            ["source"],
        )
        for source in self.sources:
            try:
                metrics = list(source())
            except DatabaseError as exc:
                # One line per failed source: Prometheus scrapes every 15 s.
                logger.warning("Metrics source %s failed: %s", source.__name__, exc)
                up.add_metric([source.__name__], 0)
                continue
            up.add_metric([source.__name__], 1)
            yield from metrics
        yield up
