"""Start-up fails loudly, naming the variable, when the environment is wrong."""

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_DIR


def _check(**env_values: str) -> subprocess.CompletedProcess:
    env = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}
    }
    env.update(env_values)
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=REPO_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "nonsense"),
        ("DATABASE_URL", "mysql://db/giu"),
        ("REDIS_URL", "http://cache:6379"),
        ("DEBUG", "maybe"),
        ("OCPP_HEARTBEAT_INTERVAL_S", "five"),
        ("TIME_ZONE", "Mars/Olympus_Mons"),
    ],
)
def test_a_wrong_value_stops_start_up_and_names_the_variable(name, value):
    result = _check(**{name: value})

    assert result.returncode != 0
    assert name in result.stderr.splitlines()[-1]


def test_the_embedded_default_starts_with_no_environment():
    result = _check()

    assert result.returncode == 0, result.stderr
