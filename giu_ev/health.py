"""Liveness (/healthz), readiness (/readyz) and the probe middleware.

/healthz answers while the process can run Python: no database, no Redis, so
a database outage never makes an orchestrator restart every web process.

/readyz checks, at the same time and each within ``HEALTH_CHECK_TIMEOUT_S``,
that the database answers, Redis answers PING, a message goes round the
channel layer, and a Celery worker answers a ping. It answers 200 with each
check's status when all pass and 503 naming the failed ones. In the embedded
default (no REDIS_URL) Redis and the worker are "not configured" and pass.

Probes and Prometheus reach a pod by its address, which is not in
ALLOWED_HOSTS; ``probe_middleware`` serves these three paths before Django
validates the Host header (they build no URLs from it, so it cannot be
poisoned through them).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

from asgiref.sync import async_to_sync, iscoroutinefunction, sync_to_async
from celery import Celery
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.decorators import sync_and_async_middleware
from redis import asyncio as aioredis

from giu_ev.exposition import metrics

logger = logging.getLogger(__name__)

NOT_CONFIGURED = "not configured"


class CheckFailed(Exception):
    """A dependency answered, but not as it should; the message says how."""


@dataclass
class CheckResult:
    ok: bool
    detail: str
    ms: float


SKIPPED = CheckResult(True, "skipped", 0)


def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive: it can run a view. Touches nothing else."""
    return JsonResponse({"status": "ok"})


def _database_check() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return connection.vendor


async def _redis_check(timeout_s: float) -> str:
    if not settings.REDIS_URL:
        return NOT_CONFIGURED
    client = aioredis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=timeout_s,
        socket_timeout=timeout_s,
        retry_on_timeout=False,
    )
    try:
        await client.ping()
    finally:
        await client.aclose()
    return "PONG"


async def _channel_layer_check() -> str:
    layer = get_channel_layer()
    if layer is None:
        return NOT_CONFIGURED
    channel = await layer.new_channel()
    nonce = secrets.token_hex(8)
    await layer.send(channel, {"type": "readyz.ping", "nonce": nonce})
    message = await layer.receive(channel)
    if message.get("nonce") != nonce:
        raise CheckFailed("channel layer returned another message")
    return type(layer).__name__


@functools.lru_cache(maxsize=4)
def _ping_app(broker_url: str) -> Celery:
    """A Celery app of its own for pings: kombu's pidbox keeps the producer pool
    of the first connection it saw, so each broker URL gets its own app."""
    return Celery(
        "giu_ev_readyz",
        broker=broker_url,
        set_as_current=False,
        broker_transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
        broker_connection_timeout=settings.HEALTH_CHECK_TIMEOUT_S,
    )


def _worker_check(timeout_s: float) -> str:
    if not settings.REDIS_URL or settings.CELERY_TASK_ALWAYS_EAGER:
        return NOT_CONFIGURED
    # limit=1: return at the first answer instead of waiting out the timeout.
    replies = _ping_app(settings.CELERY_BROKER_URL).control.ping(
        timeout=timeout_s, limit=1
    )
    if not replies:
        raise CheckFailed("no worker answered a ping")
    return f"{len(replies)} worker(s) answered"


async def _timed(
    name: str, call: Callable[[], Awaitable[str]], timeout_s: float
) -> tuple[str, CheckResult]:
    started = time.monotonic()
    try:
        detail = await asyncio.wait_for(call(), timeout=timeout_s)
        ok = True
    except TimeoutError:
        ok, detail = False, f"no answer within {timeout_s:g} s"
    except CheckFailed as exc:
        ok, detail = False, str(exc)
    except Exception as exc:  # any failure of a dependency is a failed check
        ok, detail = False, f"{type(exc).__name__}: {exc}"[:300]
    return name, CheckResult(ok, detail, round((time.monotonic() - started) * 1000, 1))


async def readiness_check(skip: frozenset[str] = frozenset()) -> dict[str, CheckResult]:
    """Run the checks at once; each gives up after HEALTH_CHECK_TIMEOUT_S.

    The worker is pinged through Redis, so only once Redis has answered: a
    ping to a stopped broker would sit in kombu's reconnect loop.
    """
    timeout_s = settings.HEALTH_CHECK_TIMEOUT_S
    limit_s = timeout_s + 0.2
    redis = asyncio.ensure_future(
        _timed("redis", lambda: _redis_check(timeout_s), limit_s)
    )

    async def worker() -> tuple[str, CheckResult]:
        if "celery_worker" in skip:
            return "celery_worker", SKIPPED
        _, redis_result = await asyncio.shield(redis)
        if not redis_result.ok:
            return "celery_worker", CheckResult(False, "broker (Redis) unreachable", 0)
        # The ping blocks, so it gets a thread of its own.
        ping = sync_to_async(lambda: _worker_check(timeout_s), thread_sensitive=False)
        # The ping waits up to timeout_s for answers after connecting and
        # publishing, so it gets a little longer in all.
        return await _timed("celery_worker", ping, timeout_s + 0.5)

    results = await asyncio.gather(
        # On the request's own thread and database connection.
        _timed("database", sync_to_async(_database_check), limit_s),
        redis,
        _timed("channel_layer", _channel_layer_check, limit_s),
        worker(),
    )
    return {name: SKIPPED if name in skip else result for name, result in results}


async def readyz(request: HttpRequest) -> JsonResponse:
    """All checks; ``?skip=celery_worker`` leaves out the named ones.

    The Kubernetes readiness probe of the web pods skips the worker: web pods
    serve chargers and pages without one, and a probe that failed with the
    workers would take every web pod out of the Service at once.
    """
    results = await readiness_check(frozenset(request.GET.getlist("skip")))

    failed = [name for name, result in results.items() if not result.ok]
    body = {
        "status": "fail" if failed else "ok",
        "failed": failed,
        "checks": {name: asdict(result) for name, result in results.items()},
    }
    if failed:
        logger.warning("Not ready: %s", ", ".join(failed), extra={"failed": failed})
    return JsonResponse(body, status=503 if failed else 200)


PROBE_PATHS = {"/healthz": "healthz", "/readyz": "readyz", "/metrics": "metrics"}


def _metrics_refused(request: HttpRequest) -> bool:
    """/metrics through the public proxy (it adds X-Forwarded-For) is refused:
    Prometheus scrapes the pods directly, the internet has no business there."""
    return settings.METRICS_REFUSE_PROXIED and "HTTP_X_FORWARDED_FOR" in request.META


@sync_and_async_middleware
def probe_middleware(get_response):
    """Serve /healthz, /readyz and /metrics before the Host header is validated."""
    if iscoroutinefunction(get_response):

        async def middleware(request: HttpRequest) -> HttpResponse:
            probe = PROBE_PATHS.get(request.path_info)
            if probe == "healthz":
                return healthz(request)
            if probe == "readyz":
                return await readyz(request)
            if probe == "metrics" and not _metrics_refused(request):
                return await sync_to_async(metrics)(request)
            return await get_response(request)

    else:

        def middleware(request: HttpRequest) -> HttpResponse:
            probe = PROBE_PATHS.get(request.path_info)
            if probe == "healthz":
                return healthz(request)
            if probe == "readyz":
                return async_to_sync(readyz)(request)
            if probe == "metrics" and not _metrics_refused(request):
                return metrics(request)
            return get_response(request)

    return middleware
