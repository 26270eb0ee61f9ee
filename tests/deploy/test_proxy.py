"""The nginx in front: WebSockets to Daphne, everything else to gunicorn, with
the headers the portal reads. Checked on the compose proxy's file and on the
example in docs/deploy.md; nginx itself checks the file when installed."""

import re
import shutil
import subprocess

import pytest

from tests.conftest import REPO_DIR

COMPOSE_CONF = REPO_DIR / "deploy" / "nginx" / "compose.conf"
NGINX = shutil.which("nginx")


def docs_example() -> str:
    text = (REPO_DIR / "docs" / "deploy.md").read_text()
    blocks = re.findall(r"```nginx\n(.*?)```", text, re.S)
    assert len(blocks) == 1
    return blocks[0]


def locations(conf: str) -> dict[str, dict]:
    """{location path: {"backend": server of its upstream, "body": text}}."""
    upstreams = dict(re.findall(r"upstream\s+(\S+)\s*\{\s*server\s+([^;\s]+)", conf))
    found = {}
    for path, body in re.findall(r"location\s+(?:=\s+)?(\S+)\s*\{([^}]*)\}", conf):
        target = re.search(r"proxy_pass\s+http://([^;/\s]+)", body)
        found[path] = {
            "backend": upstreams[target.group(1)] if target else None,
            "body": body,
        }
    return found


@pytest.mark.parametrize(
    ("conf", "daphne", "gunicorn"),
    [
        (COMPOSE_CONF.read_text(), "web:8000", "http:8000"),
        (docs_example(), "127.0.0.1:8000", "127.0.0.1:8001"),
    ],
    ids=["compose", "docs"],
)
def test_websockets_go_to_daphne_and_everything_else_to_gunicorn(
    conf, daphne, gunicorn
):
    routes = locations(conf)

    assert {path: r["backend"] for path, r in routes.items()} == {
        "/metrics": None,
        "/ocpp": daphne,
        "/ws/": daphne,
        "/": gunicorn,
    }
    assert "return 404" in routes["/metrics"]["body"]
    for path in ("/ocpp", "/ws/"):
        body = routes[path]["body"]
        assert "proxy_set_header Upgrade $http_upgrade" in body
        assert "proxy_set_header Connection $connection_upgrade" in body
        assert "proxy_http_version 1.1" in body
        # Idle charger sockets outlive the 300 s heartbeat interval.
        timeout_s = int(re.search(r"proxy_read_timeout (\d+)s", body).group(1))
        assert timeout_s > 300
    pages = routes["/"]["body"]
    # The rate limits' client address (RATELIMIT_IP_META_KEY=HTTP_X_REAL_IP),
    # always set by the proxy, never taken from the client.
    assert "proxy_set_header X-Real-IP $remote_addr" in pages
    assert "X-Forwarded-Proto" in pages
    # A remote command waits up to 30 s; gunicorn's own limit is 60 s.
    assert int(re.search(r"proxy_read_timeout (\d+)s", pages).group(1)) >= 60
    # Sync workers need nginx to buffer requests and answers (its default).
    assert not re.search(r"proxy_(request_)?buffering\s+off", conf)


@pytest.mark.skipif(NGINX is None, reason="nginx (Debian: nginx-light) missing")
def test_nginx_accepts_the_compose_proxy_file(tmp_path):
    # Outside compose the service names do not resolve: loopback stands in.
    site = tmp_path / "site.conf"
    site.write_text(
        COMPOSE_CONF.read_text()
        .replace("server web:8000", "server 127.0.0.1:8000")
        .replace("server http:8000", "server 127.0.0.1:8001")
    )
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log stderr;\nevents {{}}\n"
        f"http {{ access_log off; include {site}; }}\n"
    )

    result = subprocess.run(
        [NGINX, "-t", "-p", str(tmp_path), "-c", str(main)],
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
