"""The production serving set-up, whole: nginx with the compose proxy's file in
front of Daphne (docker/entrypoint.sh web) and gunicorn with two workers
(docker/entrypoint.sh http), sharing PostgreSQL and the Redis channel layer.

A charger connects through nginx to Daphne; an API command sent through nginx
is answered by a gunicorn worker, which reaches the charger's socket in Daphne
over the channel layer. Each server's own /metrics shows what it served.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import REPO_DIR
from tests.e2e.clients import OcppRpcCharger
from tests.e2e.conftest import DaphneServer
from tests.giu_ev.servers import free_port, http_server, wait_until

NGINX = shutil.which("nginx")
pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx (nginx-light) missing")


@contextmanager
def nginx_proxy(*, web_port: int, http_port: int, tmp: Path) -> Iterator[int]:
    """deploy/nginx/compose.conf, the service names pointed at the two servers."""
    port = free_port()
    temp = tmp / "nginx-temp"
    temp.mkdir()
    temp.chmod(0o1777)  # nginx's workers run as an unprivileged user under root
    site = tmp / "site.conf"
    site.write_text(
        (REPO_DIR / "deploy" / "nginx" / "compose.conf")
        .read_text()
        .replace("server web:8000", f"server 127.0.0.1:{web_port}")
        .replace("server http:8000", f"server 127.0.0.1:{http_port}")
        .replace("listen 80;", f"listen 127.0.0.1:{port};")
    )
    paths = " ".join(
        f"{kind}_temp_path {temp}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = tmp / "nginx.conf"
    main.write_text(
        f"pid {tmp}/nginx.pid;\nerror_log {tmp}/nginx-error.log;\nevents {{}}\n"
        f"http {{ access_log off; {paths} include {site}; }}\n"
    )
    process = subprocess.Popen(
        [NGINX, "-p", str(tmp), "-c", str(main), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: _accepts(port), 10, "nginx listening")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


def _metrics(port: int) -> dict[tuple, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10)
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text.read().decode())
        for sample in family.samples
    }


def _upgrade_status(port: int, path: str) -> bytes:
    """The status line a WebSocket handshake without Origin or session gets."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        return sock.makefile("rb").readline()


def test_a_command_sent_through_gunicorn_reaches_a_charger_on_daphne(
    e2e_services, e2e_site, tmp_path
):
    from api_access.models import ApiKey, ApiKeyScope
    from stations.services import charge_point_create

    charge_point, password = charge_point_create(identity="E2E-SERVE-1", site=e2e_site)
    _, api_key = ApiKey.objects.create_key(name="serving", scope=ApiKeyScope.READ_WRITE)
    added = {k: v for k, v in e2e_services.items() if os.environ.get(k) != v}
    daphne = DaphneServer(
        name="web",
        env={**e2e_services, "METRICS_DOMAIN_GAUGES": "0"},
        log_dir=tmp_path,
        entrypoint=True,
    )
    daphne.start()
    try:
        with (
            http_server(
                database_url=e2e_services["DATABASE_URL"],
                tmp=tmp_path,
                workers=2,
                extra_env=added,
            ) as (_, gunicorn_port, _),
            nginx_proxy(
                web_port=daphne.port, http_port=gunicorn_port, tmp=tmp_path
            ) as proxy_port,
        ):
            charger = OcppRpcCharger(
                identity="E2E-SERVE-1",
                url=f"ws://127.0.0.1:{proxy_port}/ocpp/",
                password=password,
            )
            try:
                assert charger.connect()["ok"]
                assert charger.boot()["status"] == "Accepted"
                request = urllib.request.Request(  # noqa: S310 (our own nginx)
                    f"http://127.0.0.1:{proxy_port}/api/charge-points/E2E-SERVE-1"
                    "/commands/UnlockConnector/",
                    data=json.dumps({"connectorId": 1}).encode(),
                    headers={
                        "Authorization": f"Api-Key {api_key}",
                        "Content-Type": "application/json",
                    },
                )
                with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                    status, answer = response.status, json.loads(response.read())
                unlock = charger.wait_for_call("UnlockConnector")
                while_connected = _metrics(gunicorn_port)
            finally:
                charger.close()
            live_socket = _upgrade_status(proxy_port, "/ws/live/")
            with pytest.raises(urllib.error.HTTPError) as proxied_metrics:
                urllib.request.urlopen(
                    f"http://127.0.0.1:{proxy_port}/metrics", timeout=10
                )
            gunicorn_counts = _metrics(gunicorn_port)
            daphne_counts = _metrics(daphne.port)
    finally:
        daphne.stop()

    assert status == 200
    assert answer["outcome"] == "answered"
    assert answer["response"] == {"status": "Unlocked"}
    assert unlock["params"] == {"connectorId": 1}
    # /ws/ went to Daphne too: its Origin check refuses the bare handshake
    # (gunicorn would have answered 404 for a path Django does not route).
    assert live_socket.startswith(b"HTTP/1.1 403")
    assert proxied_metrics.value.code == 404
    # The API request was served by a gunicorn worker: it counted the command.
    unlock_answered = (
        "giu_commands_total",
        (("action", "UnlockConnector"), ("outcome", "answered")),
    )
    assert gunicorn_counts[unlock_answered] == 1
    assert unlock_answered not in daphne_counts
    # The charger's frames were handled by Daphne.
    boot_in = (
        "giu_ocpp_frames_total",
        (("action", "BootNotification"), ("direction", "in")),
    )
    assert daphne_counts[boot_in] == 1
    assert boot_in not in gunicorn_counts
    # The database gauges: from gunicorn only.
    assert while_connected[("giu_chargers_connected", (("site", "e2e"),))] == 1
    assert not [name for name, _ in daphne_counts if name.startswith("giu_chargers")]
