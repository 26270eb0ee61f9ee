"""The forecasting tasks through a real Celery worker process and Redis.

The worker is a subprocess on the test database (so PostgreSQL only: an SQLite
test database lives in this process's memory) and a private queue on the
Redis DB of TEST_REDIS_URL (default: DB 3, the forecasting helper's).
"""

import os
import signal
import subprocess
import sys
import uuid
from urllib.parse import quote

import pytest
import redis
from celery import Celery
from django.db import connection

from forecasting.models import Forecast, ForecastScore, ModelStatus, ModelVersion
from forecasting.tasks import evaluate, predict, retrain
from stations.models import Site
from tests.conftest import REPO_DIR
from tests.forecasting.conftest import acn_import

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/3")
# Training under a loaded CI machine took up to a minute; allow for slower.
TASK_TIMEOUT_S = 300

pytestmark = pytest.mark.integration


def _database_url() -> str:
    db = connection.settings_dict
    user = quote(db.get("USER") or "")
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{db['NAME']}"


@pytest.fixture
def worker(transactional_db):
    if connection.vendor != "postgresql":
        pytest.skip("the worker process needs a shared (PostgreSQL) test database")
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis at {REDIS_URL} unreachable: {exc}")

    queue = f"forecasting-test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "REDIS_URL": REDIS_URL,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "DJANGO_SETTINGS_MODULE": "giu_ev.settings",
    }
    env.pop("DATABASE_TEST_NAME", None)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "giu_ev",
            "worker",
            "--pool=solo",
            "--queues",
            queue,
            "--hostname",
            f"{queue}@%h",
            "--without-mingle",
            "--without-gossip",
            "--loglevel=WARNING",
        ],
        cwd=REPO_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    # A client app of its own: the project's app is configured eager here.
    client = Celery("forecasting-test", broker=REDIS_URL, backend=REDIS_URL)
    try:
        yield lambda task, **kwargs: client.send_task(
            task.name, kwargs=kwargs, queue=queue
        ).get(timeout=TASK_TIMEOUT_S)
    finally:
        client.close()
        os.killpg(process.pid, signal.SIGTERM)
        try:
            _, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            _, stderr = process.communicate()
        if process.returncode not in (0, -signal.SIGTERM):
            sys.stderr.write(stderr.decode(errors="replace")[-4000:])


def test_retrain_predict_evaluate_run_in_a_worker(worker):
    acn_import()
    site = Site.objects.get(code="caltech")

    run = worker
    trained = run(retrain, site_ids=[site.pk], tasks=["site_energy"])
    written = run(predict, site_ids=[site.pk])
    evaluated = run(evaluate, site_ids=[site.pk])

    # The worker's writes are visible here: same database, committed.
    version = ModelVersion.objects.get(pk=trained["trained"][0])
    assert version.status == ModelStatus.ACTIVE and version.artifact_bytes > 0
    assert written == {"caltech": Forecast.objects.filter(site=site).count()}
    live = Forecast.objects.filter(site=site, task="site_energy", is_backtest=False)
    assert {f.model_version_id for f in live} == {version.pk}
    assert evaluated["caltech"]["evaluated"] > 0
    assert ForecastScore.objects.filter(site=site, model_version=version).exists()

    # Running predict twice writes the same rows, no duplicates.
    again = run(predict, site_ids=[site.pk])
    assert again == written
    assert Forecast.objects.filter(site=site).count() == written["caltech"]
