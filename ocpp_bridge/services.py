"""Writes of the bridge's own records: the frame log, commands, handshakes."""

import logging
from datetime import datetime, timedelta

from django.utils import timezone

from ocpp_bridge.models import CommandOutcome, ConnectionAttempt, Frame, RemoteCommand

logger = logging.getLogger(__name__)


def frame_record(
    *,
    charge_point_id: int | None,
    identity: str,
    direction: str,
    raw: str,
    message_type: int | None = None,
    message_id: str = "",
    action: str = "",
    payload=None,
    error_code: str = "",
    flags: list[str] | None = None,
    at: datetime | None = None,
) -> int:
    frame = Frame.objects.create(
        charge_point_id=charge_point_id,
        identity=identity[:255],
        direction=direction,
        message_type=message_type,
        message_id=message_id[:64],
        action=action[:64],
        payload=payload,
        # PostgreSQL text cannot hold NUL (a binary frame may carry one): it is
        # kept as the escape \u0000 so the rest of the frame is still stored.
        raw=raw.replace("\x00", "\\u0000"),
        error_code=error_code[:64],
        flags=flags or [],
        created_at=at or timezone.now(),
    )
    return frame.pk


def frames_prune(*, older_than_days: int, now: datetime | None = None) -> int:
    """Delete frames past the retention period, in batches; returns how many."""
    cutoff = (now or timezone.now()) - timedelta(days=older_than_days)
    deleted = 0
    while True:
        ids = list(
            Frame.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[
                :5000
            ]
        )
        if not ids:
            return deleted
        deleted += Frame.objects.filter(pk__in=ids).delete()[0]


def connection_attempt_record(
    *,
    identity: str,
    charge_point_id: int | None,
    remote_addr: str,
    raw_path: str,
    subprotocols: list[str],
    outcome: str,
    reason: str,
) -> None:
    # PostgreSQL text cannot hold NUL; an id decoded from %00 is kept escaped.
    ConnectionAttempt.objects.create(
        identity=identity.replace("\x00", "\\u0000")[:255],
        charge_point_id=charge_point_id,
        remote_addr=remote_addr[:64],
        raw_path=raw_path[:512],
        subprotocols=subprotocols,
        outcome=outcome,
        reason=reason[:32],
    )


def command_create(
    *,
    charge_point_id: int,
    action: str,
    payload: dict,
    requested_by_id: int | None = None,
    requested_by_api_key_id: str | None = None,
) -> RemoteCommand:
    return RemoteCommand.objects.create(
        charge_point_id=charge_point_id,
        action=action,
        payload=payload,
        requested_by_id=requested_by_id,
        requested_by_api_key_id=requested_by_api_key_id,
    )


def command_finish(
    *,
    command_id: int,
    outcome: str,
    response=None,
    error_code: str = "",
    error_description: str = "",
    message_id: str = "",
    latency_ms: int | None = None,
) -> None:
    RemoteCommand.objects.filter(pk=command_id, outcome=CommandOutcome.PENDING).update(
        outcome=outcome,
        response=response,
        error_code=error_code[:64],
        error_description=error_description,
        message_id=message_id[:64],
        latency_ms=latency_ms,
        finished_at=timezone.now(),
    )
