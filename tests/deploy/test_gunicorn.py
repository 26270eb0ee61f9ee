"""The http tier: deploy/gunicorn.conf.py as gunicorn reads it, and real
gunicorn workers whose /metrics report the sum over all of them."""

import os
import socket
import time
import urllib.request

import pytest
from django.conf import settings
from gunicorn.app.base import Application
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import REPO_DIR
from tests.giu_ev.servers import http_server, wait_until

CONFIG = REPO_DIR / "deploy" / "gunicorn.conf.py"
CONFIG_VARIABLES = (
    "PORT",
    "HTTP_WORKERS",
    "GUNICORN_WORKER_CLASS",
    "GUNICORN_THREADS",
    "GUNICORN_TIMEOUT",
    "GUNICORN_GRACEFUL_TIMEOUT",
    "GUNICORN_ACCESS_LOG",
    "OCPP_COMMAND_TIMEOUT_S",
    "FORWARDED_ALLOW_IPS",
    "LOG_FORMAT",
    "GUNICORN_CMD_ARGS",
)


class _ConfigOnly(Application):
    """gunicorn's own reading of the config file, without serving anything."""

    def init(self, parser, opts, args):
        return None

    def load_config(self):
        self.load_config_from_file(str(CONFIG))

    def load(self):
        raise AssertionError("the tests only read the configuration")


@pytest.fixture
def gunicorn_config(monkeypatch, tmp_path):
    """Read the config file with the given environment (nothing else set)."""
    for name in CONFIG_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    # The hooks may set it; the test process must not switch to multiprocess.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))

    def read(**env):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return _ConfigOnly().cfg

    return read


def _cpus() -> int:
    namespace: dict = {}
    exec(compile(CONFIG.read_text(), str(CONFIG), "exec"), namespace)  # noqa: S102
    return namespace["cpu_count"]()


def test_the_defaults_are_sync_workers_twice_the_cpus_on_port_8000(gunicorn_config):
    cfg = gunicorn_config()

    assert cfg.worker_class_str == "sync"
    assert cfg.threads == 1
    assert cfg.workers == 2 * _cpus()
    assert cfg.bind == ["0.0.0.0:8000"]
    assert cfg.preload_app is False
    # As Daphne's --proxy-headers: forwarded headers from the proxy in front.
    assert cfg.forwarded_allow_ips == ["*"]


def test_a_worker_outlives_the_wait_for_a_chargers_answer(gunicorn_config):
    cfg = gunicorn_config()

    assert settings.OCPP_COMMAND_TIMEOUT_S == 30
    assert cfg.timeout == 60
    assert cfg.graceful_timeout > settings.OCPP_COMMAND_TIMEOUT_S
    longer = gunicorn_config(OCPP_COMMAND_TIMEOUT_S="90")
    assert longer.timeout == 120
    assert longer.graceful_timeout == 95


def test_the_environment_sets_port_workers_and_threads(gunicorn_config):
    cfg = gunicorn_config(
        PORT="9001", HTTP_WORKERS="3", GUNICORN_WORKER_CLASS="gthread"
    )

    assert cfg.bind == ["0.0.0.0:9001"]
    assert cfg.workers == 3
    assert cfg.worker_class_str == "gthread"
    assert cfg.threads == 4
    assert gunicorn_config(GUNICORN_THREADS="8").threads == 8


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HTTP_WORKERS": "many"}, "HTTP_WORKERS='many' is not a whole number"),
        ({"HTTP_WORKERS": "0"}, "HTTP_WORKERS='0' is below 1"),
        (
            {"GUNICORN_WORKER_CLASS": "uvicorn.workers.UvicornWorker"},
            "use sync or gthread",
        ),
        ({"GUNICORN_THREADS": "8"}, "GUNICORN_THREADS needs GUNICORN_WORKER_CLASS"),
        ({"GUNICORN_ACCESS_LOG": "maybe"}, "GUNICORN_ACCESS_LOG='maybe'"),
        ({"OCPP_COMMAND_TIMEOUT_S": "soon"}, "OCPP_COMMAND_TIMEOUT_S is not a"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT='xml'"),
    ],
)
def test_a_bad_value_stops_the_start_naming_the_variable(
    gunicorn_config, capsys, env, message
):
    with pytest.raises(SystemExit):
        gunicorn_config(**env)

    assert message in capsys.readouterr().err


def test_the_access_log_is_off_unless_asked_for(gunicorn_config):
    quiet = gunicorn_config().logconfig_dict["loggers"]["gunicorn.access"]
    loud = gunicorn_config(GUNICORN_ACCESS_LOG="1").logconfig_dict["loggers"][
        "gunicorn.access"
    ]

    assert quiet["handlers"] == []
    assert loud["handlers"] == ["access"]
    assert "%(q)s" not in gunicorn_config().access_log_format  # no query strings


def test_the_start_empties_the_metrics_folder_of_counter_files_only(
    gunicorn_config, tmp_path
):
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_4242.db").write_bytes(b"old counts")
    (folder / "README").write_text("not ours")
    cfg = gunicorn_config()

    class Server:
        log = type("Log", (), {"info": staticmethod(lambda *args: None)})

    cfg.on_starting(Server())

    assert sorted(p.name for p in folder.iterdir()) == ["README"]
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(folder)


# --- Real gunicorn workers ----------------------------------------------------------


def _scrape(port: int) -> list:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        return list(text_string_to_metric_families(r.read().decode()))


def _samples(families, name: str, **labels) -> list:
    return [
        sample
        for family in families
        for sample in family.samples
        if sample.name == name
        and all(sample.labels.get(k) == v for k, v in labels.items())
    ]


def _login_page(port: int) -> int:
    url = f"http://127.0.0.1:{port}/accounts/login/"
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status


def _worker_pids(master_pid: int) -> list[int]:
    children = f"/proc/{master_pid}/task/{master_pid}/children"
    with open(children) as f:
        return [int(pid) for pid in f.read().split()]


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_metrics_from_any_worker_are_summed_over_all_workers(tmp_path):
    from django.db import connection

    from stations.models import ChargePoint, Site

    if connection.vendor != "postgresql":
        pytest.skip("the workers are other processes: they need a database server")
    site = Site.objects.create(code="depot", name="Depot")
    ChargePoint.objects.create(identity="D-1", site=site, is_connected=True)
    db = connection.settings_dict
    database_url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"

    with http_server(database_url=database_url, tmp=tmp_path, workers=2) as (
        master,
        port,
        metrics_dir,
    ):
        # A request left unfinished holds the worker that accepted it (a sync
        # worker reads one request at a time), so the next five are answered
        # by the other worker; then the first one is finished. Each worker
        # has counted some, neither all six.
        held = socket.create_connection(("127.0.0.1", port), timeout=30)
        held.sendall(b"GET /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        time.sleep(0.5)
        statuses = [_login_page(port) for _ in range(5)]
        held.sendall(b"Connection: close\r\n\r\n")
        held_answer = held.makefile("rb").readline()
        held.close()

        scrapes = [_scrape(port) for _ in range(6)]
        # A worker killed (out of memory, say) keeps its counts in the sum.
        victim = _worker_pids(master.pid)[0]
        os.kill(victim, 9)
        wait_until(
            lambda: (
                "Worker ready"
                in (tmp_path / "http.log").read_text().split(f"pid:{victim}")[-1]
            ),
            180,
            "a new worker in place of the killed one",
        )
        after_kill = [_scrape(port) for _ in range(4)]
        files = sorted(p.name for p in metrics_dir.iterdir())

    assert statuses == [200] * 5
    assert held_answer.startswith(b"HTTP/1.1 200")
    assert {p.split("_")[-1] for p in files if p.startswith("counter_")} >= {
        f"{victim}.db"
    }
    for families in scrapes + after_kill:
        served = _samples(
            families, "django_http_responses_total_by_status_total", status="200"
        )
        assert [s.value for s in served] == [6.0]
        # The database-read gauges: computed once by the worker that answers.
        connected = _samples(families, "giu_chargers_connected", site="depot")
        assert [s.value for s in connected] == [1.0]
        assert len(_samples(families, "giu_forecast_seconds_since_retrain")) == 1
        assert {s.value for s in _samples(families, "giu_metrics_source_up")} == {1.0}
        # Counters summed, not one series per process.
        assert not [s for f in families for s in f.samples if "pid" in s.labels]
