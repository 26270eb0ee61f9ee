"""Real Redis and Celery worker processes for tests, on free ports, always stopped."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import REPO_DIR

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/5")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not happen within {timeout_s} s")


@contextmanager
def redis_server():
    """A private redis-server on a free port; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        + ["--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: _accepts(port), 10, "redis-server start")
        yield process, f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


@contextmanager
def celery_worker(*, redis_url: str, database_url: str, queue: str, tmp: Path):
    """docker/entrypoint.sh worker: prefork, 2 pool processes, multiprocess metrics.

    Yields the port of its metrics endpoint.
    """
    metrics_dir = tmp / "prometheus"
    metrics_dir.mkdir()
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"},
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "WORKER_METRICS_PORT": str(port),
        "LOG_FORMAT": "text",
        "WORKER_CONCURRENCY": "2",
    }
    env.pop("DATABASE_TEST_NAME", None)
    log = (tmp / "worker.log").open("w")
    # The container's entrypoint, as `docker run giu-ev worker ...` starts it.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    process = subprocess.Popen(
        ["sh", str(REPO_DIR / "docker" / "entrypoint.sh"), "worker"]
        + ["--pool", "prefork", "-Q", queue]
        + ["--without-gossip", "--without-mingle", "-n", f"{queue}@%h"],
        cwd=REPO_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: _accepts(port), 60, "worker metrics port")
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


@contextmanager
def http_server(
    *,
    database_url: str,
    tmp: Path,
    workers: int = 2,
    extra_env: dict[str, str] | None = None,
):
    """docker/entrypoint.sh http: gunicorn with deploy/gunicorn.conf.py.

    Yields (the gunicorn master process, its port, the metrics folder) once
    every worker has loaded Django. Without REDIS_URL in ``extra_env`` the
    workers run embedded (in-memory channel layer and cache).
    """
    metrics_dir = tmp / "prometheus-http"
    port = free_port()
    skip = {"DATABASE_TEST_NAME", "REDIS_URL", "PROMETHEUS_MULTIPROC_DIR"}
    env = {
        **{k: v for k, v in os.environ.items() if k not in skip},
        "DATABASE_URL": database_url,
        "PORT": str(port),
        "HTTP_WORKERS": str(workers),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "ALLOWED_HOSTS": "127.0.0.1",
        "GIU_VAR_DIR": str(tmp / "var"),
        "LOG_FORMAT": "text",
        **(extra_env or {}),
        # "Worker ready" (deploy/gunicorn.conf.py) is an INFO line.
        "LOG_LEVEL": "INFO",
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    log = (tmp / "http.log").open("w")
    process = subprocess.Popen(
        ["sh", str(REPO_DIR / "docker" / "entrypoint.sh"), "http"],
        cwd=REPO_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        # Each worker imports Django and the forecasting stack after the fork
        # (no preload): wait until all of them have said they are up.
        wait_until(
            lambda: (
                process.poll() is not None
                or (tmp / "http.log").read_text().count("Worker ready") >= workers
            ),
            180,
            "gunicorn workers ready",
        )
        if process.poll() is not None:
            raise RuntimeError((tmp / "http.log").read_text())
        yield process, port, metrics_dir
    finally:
        process.terminate()
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()
