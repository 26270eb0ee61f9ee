"""/healthz and /readyz as a load balancer, Kubernetes and an operator see them."""

import time

import pytest
from celery import Celery

from tests.giu_ev.servers import TEST_REDIS_URL, celery_worker, redis_server


@pytest.fixture
def probe_client(client):
    """A probe reaches a pod by its address, which is not in ALLOWED_HOSTS."""
    client.defaults["HTTP_HOST"] = "10.42.0.17:8000"
    return client


def _use_redis(settings, url: str) -> None:
    settings.REDIS_URL = url
    settings.CELERY_BROKER_URL = url
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": url, "socket_connect_timeout": 0.5}]},
        }
    }


def test_healthz_answers_without_the_database(probe_client):
    # No django_db mark: any query here would raise "Database access not allowed".
    response = probe_client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_passes_in_the_embedded_default(probe_client):
    response = probe_client.get("/readyz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["channel_layer"] == {
        "ok": True,
        "detail": "InMemoryChannelLayer",
        "ms": body["checks"]["channel_layer"]["ms"],
    }
    assert body["checks"]["redis"]["detail"] == "not configured"
    assert body["checks"]["celery_worker"]["detail"] == "not configured"


@pytest.mark.django_db
def test_metrics_are_served_to_a_scraper_that_uses_the_pod_address(probe_client):
    response = probe_client.get("/metrics")

    assert response.status_code == 200
    assert b"# TYPE giu_chargers gauge" in response.content


@pytest.mark.integration
@pytest.mark.django_db
def test_readyz_reports_a_stopped_redis_within_a_second(probe_client, settings):
    with redis_server() as (process, url):
        _use_redis(settings, url)
        up = probe_client.get("/readyz").json()
        assert up["checks"]["redis"]["ok"] is True
        assert up["checks"]["channel_layer"]["ok"] is True

        process.terminate()
        process.wait(timeout=10)
        started = time.monotonic()
        response = probe_client.get("/readyz")
        elapsed_s = time.monotonic() - started

    assert response.status_code == 503
    body = response.json()
    assert {"redis", "channel_layer", "celery_worker"} <= set(body["failed"])
    assert "database" not in body["failed"]
    assert body["checks"]["celery_worker"]["detail"] == "broker (Redis) unreachable"
    assert elapsed_s < 1.5


@pytest.mark.integration
@pytest.mark.django_db
def test_readyz_fails_when_no_worker_answers(probe_client, settings):
    with redis_server() as (_, url):
        _use_redis(settings, url)
        response = probe_client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["celery_worker"]
    assert body["checks"]["celery_worker"]["detail"] == "no worker answered a ping"


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_readyz_passes_with_a_running_worker_and_the_worker_exports_its_tasks(
    probe_client, settings, tmp_path
):
    import urllib.request

    from django.db import connection
    from prometheus_client.parser import text_string_to_metric_families

    from tests.giu_ev.servers import wait_until

    _use_redis(settings, TEST_REDIS_URL)
    queue = f"test-prod-{time.monotonic_ns()}"
    db = connection.settings_dict
    database_url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"

    with celery_worker(
        redis_url=TEST_REDIS_URL, database_url=database_url, queue=queue, tmp=tmp_path
    ) as port:
        wait_until(
            lambda: probe_client.get("/readyz").status_code == 200, 30, "worker ping"
        )
        body = probe_client.get("/readyz").json()

        sender = Celery(broker=TEST_REDIS_URL)
        for _ in range(4):
            sender.send_task("stations.tasks.site_silence_check", queue=queue)

        def task_runs() -> float:
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
            families = text_string_to_metric_families(text.read().decode())
            return sum(
                sample.value
                for family in families
                if family.name == "giu_celery_tasks"
                for sample in family.samples
                if sample.name == "giu_celery_tasks_total"
                and sample.labels
                == {
                    "task": "stations.tasks.site_silence_check",
                    "outcome": "success",
                }
            )

        # Four runs spread over two pool processes, summed by the main process.
        wait_until(lambda: task_runs() == 4, 30, "four task runs on the worker port")
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
        worker_families = list(text_string_to_metric_families(text.read().decode()))

    # Database gauges are the http tier's; none comes per pool process.
    assert not [
        family.name
        for family in worker_families
        if family.name.startswith(("giu_forecast", "giu_chargers"))
        or any("pid" in sample.labels for sample in family.samples)
    ]

    assert body["status"] == "ok"
    assert "answered" in body["checks"]["celery_worker"]["detail"]
    assert body["checks"]["redis"]["detail"] == "PONG"


@pytest.mark.integration
@pytest.mark.django_db
def test_the_web_readiness_probe_can_leave_the_worker_out(probe_client, settings):
    with redis_server() as (_, url):
        _use_redis(settings, url)
        response = probe_client.get("/readyz?skip=celery_worker")

    assert response.status_code == 200
    assert response.json()["checks"]["celery_worker"]["detail"] == "skipped"


@pytest.mark.django_db
def test_metrics_through_the_public_proxy_are_refused(probe_client):
    response = probe_client.get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.9")

    # Not served: it falls through to URL routing (404, or 400 for a Host the
    # public site does not answer to).
    assert response.status_code in {400, 404}
    assert b"giu_chargers" not in response.content
