"""gunicorn for the `http` role: pages, admin, API, /metrics, /healthz, /readyz.

    gunicorn --config deploy/gunicorn.conf.py giu_ev.wsgi:application

(docker/entrypoint.sh http runs exactly this.) WebSockets (/ocpp/, /ws/) are
not served here: WSGI cannot hold them; they go to Daphne (the `web` role).
Under ASGI Django runs a process's sync views one at a time; under WSGI each
worker runs its own request (docs/api.md, "Serving in production").

Sync workers read each request and write each answer at the client's pace, one
at a time: they must sit behind a buffering proxy (nginx, ingress-nginx; see
docs/deploy.md), or a slow client holds a whole worker for as long as it likes.

gunicorn's master reads this file before it forks the workers. Every value
comes from the environment; a value that does not parse stops the start with a
message naming the variable. GUNICORN_CMD_ARGS (gunicorn's own) still overrides
anything here.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path


def _env_int(name: str, default: int, *, minimum: int = 1) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise ValueError(f"{name}={raw!r} is below {minimum}")
    return value


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"{name}={raw!r} is not true/false")


def cpu_count() -> int:
    """CPUs this process may use: its affinity, capped by a cgroup v2 CPU quota.

    os.cpu_count() in a container is the host's count: on a 64-core node it
    would start 128 workers of ~300 MB each.
    """
    cpus = len(os.sched_getaffinity(0))
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cpus


# --- Workers -----------------------------------------------------------------------

# sync: one request per worker process at a time. gthread (GUNICORN_THREADS
# threads per worker) uses less memory per concurrent request; both are WSGI.
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "").strip() or "sync"
if worker_class not in {"sync", "gthread"}:
    raise ValueError(
        f"GUNICORN_WORKER_CLASS={worker_class!r}: use sync or gthread "
        "(WebSockets are Daphne's, the web role)"
    )
# Twice the CPUs: a sync worker also waits on PostgreSQL, Redis and chargers.
# Each worker holds Django and the forecasting stack (~300 MB, ~13 s of CPU to
# start, docs/api.md) and its own database pool: keep HTTP_WORKERS x
# DATABASE_POOL_MAX below PostgreSQL's max_connections.
workers = _env_int("HTTP_WORKERS", 2 * cpu_count())
threads = _env_int("GUNICORN_THREADS", 4 if worker_class == "gthread" else 1)
if worker_class == "sync" and threads != 1:
    # gunicorn would quietly switch to gthread.
    raise ValueError("GUNICORN_THREADS needs GUNICORN_WORKER_CLASS=gthread")
# Never preload: forking after onnxruntime and XGBoost have started their
# thread pools aborts the workers (SIGABRT, seen in bench/api_latency.py).
# Each worker imports the project itself, after the fork.
preload_app = False

# An API or admin remote command waits up to OCPP_COMMAND_TIMEOUT_S (30 s) for
# the charger's answer; the worker must outlive that wait with room to write
# the answer, or the master kills it mid-request: 60 s at the default.
try:
    _command_timeout_s = float(os.environ.get("OCPP_COMMAND_TIMEOUT_S", "") or 30)
except ValueError:
    raise ValueError("OCPP_COMMAND_TIMEOUT_S is not a number of seconds") from None
timeout = _env_int("GUNICORN_TIMEOUT", max(60, math.ceil(_command_timeout_s) + 30))
# On SIGTERM a worker finishes its request (a command: up to 30 s) before it
# exits; the pod's terminationGracePeriodSeconds (45) is longer than this.
graceful_timeout = _env_int(
    "GUNICORN_GRACEFUL_TIMEOUT", max(35, math.ceil(_command_timeout_s) + 5)
)
# Only gthread keeps connections open between requests; sync workers close
# each one after the answer.
keepalive = _env_int("GUNICORN_KEEPALIVE", 5)
# The heartbeat file of each worker in memory, not on a disk-backed /tmp where
# fchmod can stall (gunicorn's FAQ for containers).
worker_tmp_dir = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None  # noqa: S108
# gunicornc's control socket: an orchestrator manages the container, and two
# gunicorns on one host would fight over its default path.
control_socket_disable = True

# --- Network ---------------------------------------------------------------------

_port = _env_int("PORT", 8000)
bind = [f"0.0.0.0:{_port}"]  # noqa: S104 (the container's port; the proxy is in front)
# As Daphne's --proxy-headers: the container is reached only through the proxy
# (and by probes and Prometheus), so the forwarded headers are believed from
# any peer. Django reads X-Forwarded-Proto itself (SECURE_PROXY_SSL_HEADER).
# The client address for rate limits comes from the header the proxy
# overwrites, RATELIMIT_IP_META_KEY=HTTP_X_REAL_IP: gunicorn leaves
# REMOTE_ADDR as the proxy's address.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "").strip() or "*"

# --- Logs --------------------------------------------------------------------------

# gunicorn's own lines (worker boots, timeouts) in the project's format and
# through its secret filter (giu_ev/log.py), to stderr like Django's. Importing
# giu_ev.log loads only the logging helpers and the Celery app object, not
# Django or the forecasting stack. The default format follows the settings:
# JSON once REDIS_URL is set (production), readable lines otherwise.
_log_format = os.environ.get("LOG_FORMAT", "").strip().lower() or (
    "json" if os.environ.get("REDIS_URL") else "text"
)
if _log_format not in {"json", "text"}:
    raise ValueError(f"LOG_FORMAT={_log_format!r}: use json or text")
loglevel = os.environ.get("LOG_LEVEL", "").strip().lower() or "info"
# Access lines are off by default: the proxy in front logs every request and
# django-prometheus counts them. GUNICORN_ACCESS_LOG=1 writes one line per
# request to stdout, without the query string (it may carry filters with
# personal data); the address is the one the proxy put in X-Real-IP.
_access_log = _env_bool("GUNICORN_ACCESS_LOG", False)
access_log_format = '%({x-real-ip}i)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_secrets": {"()": "giu_ev.log.SecretMaskFilter"}},
    "formatters": {
        "json": {"()": "giu_ev.log.JsonLinesFormatter"},
        "text": {"()": "giu_ev.log.TextFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "formatter": _log_format,
            "filters": ["mask_secrets"],
        },
        "access": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": _log_format,
            "filters": ["mask_secrets"],
        },
    },
    "root": {"handlers": ["console"], "level": loglevel.upper()},
    "loggers": {
        "gunicorn.error": {
            "handlers": ["console"],
            "level": loglevel.upper(),
            "propagate": False,
        },
        "gunicorn.access": {
            "handlers": ["access"] if _access_log else [],
            "level": "INFO" if _access_log else "CRITICAL",
            "propagate": False,
        },
    },
}

# --- Metrics of several processes ---------------------------------------------------

# Each worker counts its own requests, commands and queries. With
# PROMETHEUS_MULTIPROC_DIR set, prometheus_client keeps those counters in files
# there, and /metrics answered by any worker is their sum over all workers
# (giu_ev/exposition.py), as the Celery worker's port does for its pool.
# By hand without the variable: a folder of this port's own.
_metrics_default_dir = Path(tempfile.gettempdir()) / f"giu-ev-http-metrics-{_port}"


def on_starting(server) -> None:
    """In the master, before any worker exists: an empty folder for the counters.

    Workers inherit the variable when forked. Files of an earlier run would be
    added to this run's counts, so the folder starts empty; only the
    counters' files (*.db) are removed, whatever folder was named.
    """
    path = Path(
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(_metrics_default_dir))
    )
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    server.log.info("Worker metrics are summed in %s", path)


def post_worker_init(worker) -> None:
    """The worker has loaded Django (seconds of CPU each): it takes requests now."""
    worker.log.info("Worker ready (pid: %s)", worker.pid)


def child_exit(server, worker) -> None:
    """A worker is gone (ended, killed at its timeout, or replaced).

    Its counters stay in the sum, so totals never go back; its live gauges are
    dropped.
    """
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
