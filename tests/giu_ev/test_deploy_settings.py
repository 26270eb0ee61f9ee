"""Production settings pass `check --deploy`; the embedded default stays plain HTTP."""

import os
import secrets
import subprocess
import sys

from tests.conftest import REPO_DIR

PRODUCTION_ENV = {
    "DEBUG": "0",
    "ALLOWED_HOSTS": "portal.example.org",
    "CSRF_TRUSTED_ORIGINS": "https://portal.example.org",
    "DATABASE_URL": "postgres://giu:db-password@db.internal:5432/giu_ev",
    "REDIS_URL": "redis://redis.internal:6379/0",
}


def _manage(*args: str, **env_values: str) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY"}
        and not k.startswith("SECURE_")
    }
    env.update(env_values)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_production_values():
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        SECRET_KEY=secrets.token_urlsafe(64),
        **PRODUCTION_ENV,
    )

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_check_deploy_flags_a_production_that_turns_https_off():
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        SECRET_KEY=secrets.token_urlsafe(64),
        SECURE_SSL_REDIRECT="0",
        **PRODUCTION_ENV,
    )

    assert result.returncode != 0
    assert "security.W008" in result.stderr


def _printed_settings(**env_values: str) -> dict[str, str]:
    program = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.SECURE_HSTS_SECONDS,"
        " s.LOG_FORMAT)"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "DEBUG", "LOG_FORMAT"}
    }
    env.update(env_values, DJANGO_SETTINGS_MODULE="giu_ev.settings")
    result = subprocess.run(
        [sys.executable, "-c", program],
        cwd=REPO_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout.split()


def test_the_embedded_default_serves_plain_http_with_readable_logs():
    assert _printed_settings() == ["False", "False", "0", "text"]


def test_production_defaults_are_the_safe_ones():
    values = _printed_settings(SECRET_KEY=secrets.token_urlsafe(64), **PRODUCTION_ENV)

    assert values == ["True", "True", "31536000", "json"]


def test_probes_and_scrapes_are_not_redirected_to_https(client, settings, db):
    settings.SECURE_SSL_REDIRECT = True

    assert client.get("/healthz").status_code == 200
    assert client.get("/metrics").status_code == 200
    assert client.get("/accounts/login/").status_code == 301
