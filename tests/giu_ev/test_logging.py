"""Log records as a log shipper and an operator read them."""

import io
import json
import logging
import os
import subprocess
import sys

import pytest

from giu_ev.log import (
    ContextIdsFilter,
    JsonLinesFormatter,
    SecretMaskFilter,
    TextFormatter,
    log_context,
)
from tests.conftest import REPO_DIR

SECRETS = ("s3cr3t-pass", "dG9wOnNlY3JldA==", "sk_live_abcdef", "hunter22")


@pytest.fixture
def capture():
    """A logger wired as settings.LOGGING wires the console handler."""

    def make(formatter):
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(formatter)
        handler.addFilter(ContextIdsFilter())
        handler.addFilter(SecretMaskFilter())
        logger = logging.getLogger(f"tests.capture.{id(stream)}")
        logger.handlers = [handler]
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
        return logger, stream

    return make


def test_the_production_configuration_writes_json_lines_with_ids_and_no_secret():
    program = """
import logging, django
django.setup()
log = logging.getLogger("ocpp_bridge.consumers")
log.warning(
    "Boot from %s with headers %s",
    "CP-7",
    {"Authorization": "Basic dG9wOnNlY3JldA==", "Host": "portal"},
    extra={"charge_point": "CP-7", "session": 4711, "password": "s3cr3t-pass"},
)
try:
    raise ConnectionError("postgres://giu:hunter22@db:5432/giu refused")
except ConnectionError:
    log.exception("DB gone api_key=sk_live_abcdef", extra={"model_version": "v12"})
"""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "LOG_FORMAT"}
    }
    env.update(LOG_FORMAT="json", DJANGO_SETTINGS_MODULE="giu_ev.settings")

    result = subprocess.run(
        [sys.executable, "-c", program],
        cwd=REPO_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )

    records = [json.loads(line) for line in result.stderr.splitlines()]
    boot, failure = records
    assert boot["level"] == "WARNING"
    assert boot["logger"] == "ocpp_bridge.consumers"
    assert boot["charge_point"] == "CP-7"
    assert boot["session"] == 4711
    assert boot["message"].startswith("Boot from CP-7 with headers")
    assert boot["password"] == "***"
    assert "time" in boot
    assert failure["model_version"] == "v12"
    assert "ConnectionError" in failure["exc_info"]
    for secret in SECRETS:
        assert secret not in result.stderr


def test_the_development_configuration_writes_readable_lines():
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "LOG_FORMAT"}}
    program = (
        "import logging, django; django.setup(); "
        "logging.getLogger('sessions').warning('Late stop', "
        "extra={'charge_point': 'CP-1', 'session': 9})"
    )
    env["DJANGO_SETTINGS_MODULE"] = "giu_ev.settings"

    result = subprocess.run(
        [sys.executable, "-c", program],
        cwd=REPO_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )

    line = result.stderr.strip()
    assert line.endswith("WARNING sessions Late stop [charge_point=CP-1 session=9]")


def test_ids_bound_by_a_consumer_reach_every_record_of_its_work(capture):
    logger, stream = capture(JsonLinesFormatter())

    with log_context(charge_point="CP-3"):
        logger.info("Heartbeat")
        with log_context(session=12):
            logger.info("Meter values stored")
    logger.info("Unrelated")

    heartbeat, meter, unrelated = (
        json.loads(x) for x in stream.getvalue().split("\n")[:3]
    )
    assert heartbeat["charge_point"] == "CP-3" and "session" not in heartbeat
    assert meter["charge_point"] == "CP-3" and meter["session"] == 12
    assert "charge_point" not in unrelated


def test_ids_in_extra_win_over_bound_ones(capture):
    logger, stream = capture(TextFormatter())

    with log_context(charge_point="CP-3"):
        logger.info("Command to another charger", extra={"charge_point": "CP-9"})

    assert stream.getvalue().rstrip().endswith("[charge_point=CP-9]")


@pytest.mark.parametrize(
    "message",
    [
        "Authorization: Basic dG9wOnNlY3JldA==",
        "authorization=Bearer sk_live_abcdef",
        "{'password': 's3cr3t-pass', 'user': 'op'}",
        '{"api_key": "sk_live_abcdef"}',
        "GET /api/?token=sk_live_abcdef&page=2",
        "connect to redis://default:hunter22@cache:6379/0 failed",
        "X-Api-Key: sk_live_abcdef",
    ],
)
def test_secrets_in_messages_are_masked(capture, message):
    logger, stream = capture(TextFormatter())

    logger.warning("Seen: %s", message)

    line = stream.getvalue()
    assert "***" in line
    for secret in SECRETS:
        assert secret not in line


def test_masking_keeps_the_rest_of_the_message(capture):
    logger, stream = capture(JsonLinesFormatter())

    logger.warning(
        "Login failed for %s", "operator", extra={"headers": {"Cookie": "sessionid=x"}}
    )

    record = json.loads(stream.getvalue())
    assert record["message"] == "Login failed for operator"
    assert record["headers"] == {"Cookie": "***"}


def test_a_task_called_with_a_charge_point_id_logs_it(capture, db):
    from celery import shared_task

    logger, stream = capture(JsonLinesFormatter())

    @shared_task(name="tests.log_probe")
    def log_probe(charge_point_id: int) -> None:
        logger.info("Working on it")

    log_probe.delay(charge_point_id=42)

    record = json.loads(stream.getvalue().splitlines()[-1])
    assert record["charge_point"] == 42
    logger.info("After the task")
    assert "charge_point" not in json.loads(stream.getvalue().splitlines()[-1])
