"""What /metrics (and the Celery worker's metrics port) answer.

Counters and histograms are kept by the process that counts. A server of one
process (Daphne: the `web` role, `make run`) keeps them in memory. A server
that forks workers (gunicorn's `http` role, the Celery worker's pool) runs
with ``PROMETHEUS_MULTIPROC_DIR`` set: every process writes its counters to
files there, and whichever process answers reports the sum over all of them
(prometheus_client's multiprocess mode; deploy/gunicorn.conf.py and
docker/entrypoint.sh set the folder up).

Gauges read from the database at scrape time (giu_ev.collectors, and
forecasting's time since the last retrain) are the same truth whichever
process reads them. They are computed by the process that answers, once per
scrape, and only where ``METRICS_DOMAIN_GAUGES`` is on: in production the
`http` tier exports them and Daphne's `web` tier leaves them out, so that no
panel or rule sees them twice over. In a multiprocess folder such a gauge
would only hold each process's meaningless 0, so it is dropped from there.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from giu_ev.collectors import DomainCollector


def multiprocess_dir() -> str | None:
    """The folder the processes of this server count in, if they share one."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def scrape_time_collectors() -> list[Collector]:
    """Gauges computed from the database when they are collected."""
    from forecasting.metrics import FORECAST_SECONDS_SINCE_RETRAIN

    return [DomainCollector(), FORECAST_SECONDS_SINCE_RETRAIN]


def _scrape_time_names() -> frozenset[str]:
    from forecasting.metrics import FORECAST_SECONDS_SINCE_RETRAIN

    return frozenset(m.name for m in FORECAST_SECONDS_SINCE_RETRAIN.describe())


def default_registry_prepare() -> None:
    """Take forecasting's scrape-time gauge out of the default registry.

    Its module registers it there on import; /metrics adds it per scrape
    where METRICS_DOMAIN_GAUGES is on, and where it is off its query must not
    run at all. (DomainCollector is never put there.)
    """
    from forecasting.metrics import FORECAST_SECONDS_SINCE_RETRAIN

    try:
        REGISTRY.unregister(FORECAST_SECONDS_SINCE_RETRAIN)
    except KeyError:
        pass  # taken out already


class _Without(Collector):
    """The families of another collector, less the named ones."""

    def __init__(self, source: Collector, names: Iterable[str]) -> None:
        self.source = source
        self.names = frozenset(names)

    def collect(self) -> Iterator[Metric]:
        for family in self.source.collect():
            if family.name not in self.names:
                yield family


class _Forward(Collector):
    """Everything in another registry (this process's own counters)."""

    def __init__(self, source: CollectorRegistry) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        return self.source.collect()


def metrics_registry(*, domain_gauges: bool) -> CollectorRegistry:
    """This process's counters (summed over its siblings) and, if asked, the
    scrape-time gauges computed once."""
    registry = CollectorRegistry()
    if multiprocess_dir():
        # Every counter summed over the processes; the scrape-time gauges'
        # files hold only each process's 0.
        counted = multiprocess.MultiProcessCollector(None)
        registry.register(_Without(counted, _scrape_time_names()))
    else:
        registry.register(_Forward(REGISTRY))
    if domain_gauges:
        for collector in scrape_time_collectors():
            registry.register(collector)
    return registry


def metrics(request: HttpRequest) -> HttpResponse:
    """GET /metrics, in Prometheus' text format."""
    registry = metrics_registry(domain_gauges=settings.METRICS_DOMAIN_GAUGES)
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
