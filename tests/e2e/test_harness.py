"""The harness itself: a Daphne child shares the test database and stops cleanly."""

import http.cookiejar
import re
import urllib.parse
import urllib.request

import pytest

pytestmark = pytest.mark.integration


def _admin_login(base_url: str, username: str, password: str) -> str:
    """Log in to the admin over HTTP; return the path the server sent us to."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base_url}/admin/login/?next=/admin/").read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode(
        {
            "csrfmiddlewaretoken": token,
            "username": username,
            "password": password,
            "next": "/admin/",
        }
    ).encode()
    request = urllib.request.Request(  # noqa: S310 (http to our own child)
        f"{base_url}/admin/login/?next=/admin/",
        data=form,
        headers={"Referer": f"{base_url}/admin/login/"},
    )
    return urllib.parse.urlparse(opener.open(request).geturl()).path


def test_daphne_child_reads_rows_the_test_committed(daphne_server, staff_user):
    assert _admin_login(daphne_server.http_url, "staff", "staff-pass-1") == "/admin/"
    assert (
        _admin_login(daphne_server.http_url, "staff", "wrong-pass") == "/admin/login/"
    )


def test_daphne_child_stops_without_leaving_a_process(
    e2e_services, tmp_path, transactional_db
):
    from tests.e2e.conftest import DaphneServer

    server = DaphneServer(name="short", env=e2e_services, log_dir=tmp_path)
    server.start()
    pid = server.proc.pid

    server.stop()

    assert server.proc.returncode is not None
    with pytest.raises(ProcessLookupError):
        import os

        os.kill(pid, 0)
