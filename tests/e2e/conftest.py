"""End-to-end harness: real Daphne processes, the Redis channel layer, real sockets.

The server under test runs as `daphne giu_ev.asgi:application` in a child
process on a free port, configured only through the environment as in
production: `DATABASE_URL` names pytest-django's test database (so both
processes see the same rows; tests use `transactional_db` so their rows are
committed) and `REDIS_URL` the channel layer (env `TEST_REDIS_URL`, default
Redis DB 2). The test process talks to the same Redis with the channel layer
settings production computes, so `command_send` here reaches a charger
connected to a Daphne process there.

Needs PostgreSQL (an SQLite test database lives in memory and cannot be shared
with another process) and Redis; CI has both.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.e2e.clients import OcppRpcCharger

REPO_DIR = Path(__file__).resolve().parent.parent.parent
DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/2"
# Daphne imports Django, the apps and the ocpp package before it listens: about
# 2 s on the 2-core CI machine. 30 s leaves room for a loaded machine.
START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 10


def test_redis_url() -> str:
    return os.environ.get("TEST_REDIS_URL", DEFAULT_TEST_REDIS_URL)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DaphneServer:
    """One `daphne giu_ev.asgi:application` child process on a free port.

    With ``entrypoint`` it is started as the container's web role starts it
    (`docker/entrypoint.sh web`, with that role's options; it binds 0.0.0.0).
    """

    def __init__(
        self,
        *,
        name: str,
        env: dict[str, str],
        log_dir: Path,
        entrypoint: bool = False,
    ) -> None:
        self.name = name
        self.env = env
        self.log_path = log_dir / f"daphne-{name}.log"
        self.entrypoint = entrypoint
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ocpp_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp/"

    def start(self) -> None:
        # A port found free can be taken before Daphne binds it; try a few.
        for _ in range(3):
            self.port = _free_port()
            log = self.log_path.open("ab")
            command, env = self._command()
            self.proc = subprocess.Popen(
                command,
                cwd=REPO_DIR,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            log.close()
            if self._wait_ready():
                return
            self.stop()
        raise RuntimeError(f"Daphne {self.name} did not start:\n{self.log_tail()}")

    def _command(self) -> tuple[list[str], dict[str, str]]:
        bin_dir = Path(sys.executable).parent
        if self.entrypoint:
            env = {
                **self.env,
                "PORT": str(self.port),
                "PATH": f"{bin_dir}{os.pathsep}{self.env.get('PATH', '')}",
            }
            return ["sh", str(REPO_DIR / "docker" / "entrypoint.sh"), "web"], env
        command = [str(bin_dir / "daphne"), "-b", "127.0.0.1", "-p", str(self.port)]
        return [*command, "giu_ev.asgi:application"], self.env

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            try:
                # Any HTTP answer means Django is loaded and the port is ours.
                urllib.request.urlopen(f"{self.http_url}/admin/login/", timeout=2)  # noqa: S310
                return True
            except urllib.error.HTTPError:
                return True
            except OSError:
                time.sleep(0.1)
        return False

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT_S)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return "(no log)"


def _database_url(settings_dict: dict) -> str:
    user = quote(settings_dict.get("USER") or "", safe="")
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{quote(password, safe='')}@" if password else f"{user}@"
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or "5432"
    return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"


@pytest.fixture(scope="session")
def e2e_services(django_db_setup, django_db_blocker) -> dict[str, str]:
    """The environment a Daphne child needs to share the test DB and Redis."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip(
            "end-to-end tests need PostgreSQL: set DATABASE_URL (make test does)"
        )
    redis_url = test_redis_url()
    import redis

    try:
        client = redis.Redis.from_url(redis_url)
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"end-to-end tests need Redis at {redis_url}: {exc}")
    # Our own Redis DB only (HELPERS: one DB per helper): start from nothing so a
    # group left by an earlier run cannot route a command to a dead channel.
    client.flushdb()
    client.close()

    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_TEST_NAME", "PYTEST_CURRENT_TEST"}
    }
    env.update(
        {
            "DATABASE_URL": _database_url(connection.settings_dict),
            "REDIS_URL": redis_url,
            "DJANGO_SETTINGS_MODULE": "giu_ev.settings",
            "DEBUG": "false",
            "LOG_LEVEL": "WARNING",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            # Tests run the Celery side in-process; no worker is started.
            "CELERY_TASK_ALWAYS_EAGER": "true",
            "SESSION_COOKIE_SECURE": "false",
            "CSRF_COOKIE_SECURE": "false",
            # Plain HTTP on 127.0.0.1: production (REDIS_URL, DEBUG off) would
            # redirect to HTTPS, which a TLS proxy terminates in a deployment.
            "SECURE_SSL_REDIRECT": "false",
            "SECURE_HSTS_SECONDS": "0",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@pytest.fixture(scope="session")
def production_channel_layers(e2e_services) -> dict:
    """CHANNEL_LAYERS exactly as settings.py computes them with REDIS_URL set."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, django; django.setup();"
            "from django.conf import settings;"
            "print(json.dumps(settings.CHANNEL_LAYERS))",
        ],
        cwd=REPO_DIR,
        env=e2e_services,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(autouse=True)
def _committed_rows(transactional_db):
    """Rows a test makes are committed, so the Daphne children can read them."""


@pytest.fixture(autouse=True)
def _redis_channel_layer(settings, production_channel_layers):
    """The test process joins the Daphne processes' channel layer."""
    settings.CHANNEL_LAYERS = production_channel_layers


@pytest.fixture(autouse=True)
def _production_password_hashers(settings):
    """Users made here log in to the Daphne children, which know no MD5 hasher."""
    settings.PASSWORD_HASHERS = [
        h for h in settings.PASSWORD_HASHERS if not h.endswith("MD5PasswordHasher")
    ]


@pytest.fixture(scope="session")
def daphne_server(e2e_services, tmp_path_factory) -> Iterator[DaphneServer]:
    server = DaphneServer(
        name="a", env=e2e_services, log_dir=tmp_path_factory.mktemp("daphne")
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def second_daphne_server(e2e_services, tmp_path) -> Iterator[DaphneServer]:
    """Another process with the same DB and Redis, for cross-process commands."""
    server = DaphneServer(name="b", env=e2e_services, log_dir=tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def container_web_server(e2e_services, tmp_path) -> Iterator[DaphneServer]:
    """The web role of docker/entrypoint.sh, as a container runs it."""
    server = DaphneServer(
        name="web", env=e2e_services, log_dir=tmp_path, entrypoint=True
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def chargers() -> Iterator[list[OcppRpcCharger]]:
    """Collects ocpp-rpc chargers a test opens; closes them all afterwards."""
    opened: list[OcppRpcCharger] = []
    yield opened
    for charger in opened:
        charger.close()


E2E_ID_TAG = "E2E-TAG-1"


@pytest.fixture
def e2e_site():
    from stations.models import Site

    return Site.objects.create(code="e2e", name="E2E depot", time_zone="UTC")


@pytest.fixture
def id_token():
    from sessions.models import IdToken

    return IdToken.objects.create(value=E2E_ID_TAG, owner="E2E driver")


@pytest.fixture
def make_charger(e2e_site, daphne_server, chargers):
    """Register a charge point with a generated password; give back its client.

    The client is an ocpp-rpc charger (strict mode) aimed at the shared Daphne
    process, not yet connected; pass ``server`` to aim it at another one.
    """
    from stations.services import charge_point_create

    def make(identity: str, *, server: DaphneServer | None = None):
        charge_point, password = charge_point_create(identity=identity, site=e2e_site)
        charger = OcppRpcCharger(
            identity=identity,
            url=(server or daphne_server).ocpp_url,
            password=password,
        )
        chargers.append(charger)
        return charge_point, charger

    return make


def wait_until(predicate, *, timeout_s: float = 10, interval_s: float = 0.05):
    """Poll until predicate() is truthy (a write in the Daphne child lands)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval_s)
