"""Celery task outcomes and durations, and the worker's own /metrics port.

Signals count every task run in the process that runs it: in the web server
when tasks run eagerly (the embedded default), in the worker's pool processes
in production. Those pool processes are forks of the worker, so the worker is
run with ``PROMETHEUS_MULTIPROC_DIR`` set (docker/entrypoint.sh does it): each
process writes its counters to files there, and the worker's main process
serves the sum on ``WORKER_METRICS_PORT`` for Prometheus to scrape beside the
web servers' /metrics (gunicorn's workers are summed the same way; Daphne
runs as one process and keeps its counters in memory). The scrape-time
gauges are left to the http tier (giu_ev/exposition.py).
"""

from __future__ import annotations

import logging
import os
import time

from celery import signals
from django.conf import settings
from prometheus_client import CollectorRegistry, multiprocess
from prometheus_client.exposition import start_http_server

from giu_ev.exposition import metrics_registry
from giu_ev.log import log_context_bind, log_context_reset
from giu_ev.metrics import CELERY_TASK_DURATION, CELERY_TASKS

logger = logging.getLogger(__name__)

_started: dict[str, float] = {}
_log_tokens: dict[str, object] = {}

# Keyword arguments that name the thing a task works on, logged as its ids.
_TASK_LOG_IDS = {
    "charge_point_id": "charge_point",
    "session_id": "session",
    "model_version_id": "model_version",
}


@signals.task_prerun.connect
def _task_started(task_id: str, task, kwargs=None, **_) -> None:
    _started[task_id] = time.monotonic()
    ids = {
        log_key: (kwargs or {}).get(arg)
        for arg, log_key in _TASK_LOG_IDS.items()
        if (kwargs or {}).get(arg) is not None
    }
    if ids:
        _log_tokens[task_id] = log_context_bind(**ids)


@signals.task_postrun.connect
def _task_finished(task_id: str, task, state: str | None = None, **_) -> None:
    started = _started.pop(task_id, None)
    token = _log_tokens.pop(task_id, None)
    if token is not None:
        log_context_reset(token)
    # state is SUCCESS, FAILURE, RETRY, IGNORED or REJECTED (celery.states).
    CELERY_TASKS.labels(task=task.name, outcome=(state or "unknown").lower()).inc()
    if started is not None:
        CELERY_TASK_DURATION.labels(task=task.name).observe(time.monotonic() - started)


@signals.task_revoked.connect
def _task_revoked(request=None, **_) -> None:
    name = getattr(request, "task", None) or "unknown"
    CELERY_TASKS.labels(task=name, outcome="revoked").inc()


def worker_registry() -> CollectorRegistry:
    """What the worker's port serves: the sum over all pool processes."""
    return metrics_registry(domain_gauges=False)


@signals.worker_init.connect
def _serve_worker_metrics(**_) -> None:
    port = settings.WORKER_METRICS_PORT
    if not port:
        return
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        logger.warning(
            "PROMETHEUS_MULTIPROC_DIR is not set: the worker's port shows only "
            "its main process; counters of prefork pool processes are missing"
        )
    start_http_server(port, registry=worker_registry())
    logger.info("Worker metrics on port %s", port)


@signals.worker_process_shutdown.connect
def _pool_process_gone(pid: int | None = None, **_) -> None:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ and pid:
        multiprocess.mark_process_dead(pid)
