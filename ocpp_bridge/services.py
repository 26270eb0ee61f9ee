"""Writes of the bridge's own records: the frame log, commands, handshakes.

``frame_writes_store`` also writes what frames carry (meter values, the time a
charger was last heard from), so that a frame, its data and its answer are
stored in one transaction, and the frames of many chargers in one batch.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from giu_ev.bulk import rows_insert
from ocpp_bridge.models import CommandOutcome, ConnectionAttempt, Frame, RemoteCommand
from sessions import services as sessions
from stations import services as stations

logger = logging.getLogger(__name__)


def frame_build(
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
) -> Frame:
    """A frame-log row, not yet saved (``frame_record`` or a ``FrameWrite``)."""
    return Frame(
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


def frame_record(**fields) -> int:
    """Store one frame (the arguments of ``frame_build``); returns its id."""
    frame = frame_build(**fields)
    frame.save(force_insert=True)
    return frame.pk


@dataclass
class FrameWrite:
    """What handling one frame of one charger stores, all in one transaction.

    ``frames`` (the frame received, or an answer) are stored whatever happens
    to the rest; ``meter_values`` (the data a MeterValues frame carries) and
    ``answer`` (the CallResult for it) are stored together or not at all, so
    that the answer is in the log only if the data it acknowledges is.
    ``seen_at`` updates the charger's last-seen time, ``flags`` its deviations.
    """

    charge_point_id: int
    frames: list[Frame]
    seen_at: datetime | None = None
    flags: list[str] = field(default_factory=list)
    meter_values: sessions.MeterValuesReport | None = None
    answer: Frame | None = None


class FramesNotStored(Exception):
    """Not even the frames of a write could be stored (the database is down)."""


def frame_writes_store(
    *, writes: list[FrameWrite]
) -> list[FramesNotStored | Exception | None]:
    """Store the writes of many chargers in one transaction; what failed, each.

    The outcome of a write is None (all stored), the error of its data (its
    frames, seen time and flags stored alone; not its answer, not its data) or
    ``FramesNotStored`` (nothing stored). When the batch fails as a whole, each
    write is tried on its own, so that one charger's bad data costs the others
    nothing but the retry.
    """
    try:
        _writes_store(writes)
    except Exception:
        if len(writes) > 1:
            # The write at fault is reported by its own handler (InternalError,
            # logged with its traceback); the others only pay for the retry.
            logger.warning(
                "A batch of %s frame writes failed; storing them one by one",
                len(writes),
            )
    else:
        return [None] * len(writes)

    outcomes: list[FramesNotStored | Exception | None] = []
    for write in writes:
        try:
            _writes_store([write])
        except Exception as error:
            outcomes.append(_frames_only_store(write, error))
        else:
            outcomes.append(None)
    return outcomes


def _frames_only_store(
    write: FrameWrite, error: Exception
) -> FramesNotStored | Exception:
    if write.meter_values is None and write.answer is None:
        return FramesNotStored(str(error))
    frames_only = FrameWrite(
        charge_point_id=write.charge_point_id,
        frames=write.frames,
        seen_at=write.seen_at,
        flags=write.flags,
    )
    try:
        _writes_store([frames_only])
    except Exception as frames_error:
        return FramesNotStored(str(frames_error))
    return error


def _writes_store(writes: list[FrameWrite]) -> None:
    # One charger's rows are locked in charger order in every batch, so two
    # batches holding the same chargers (a charger's old and new socket) wait
    # for each other instead of deadlocking.
    writes = sorted(writes, key=lambda write: write.charge_point_id)
    with transaction.atomic():
        frames = []
        for write in writes:
            frames.extend(write.frames)
            if write.answer is not None:
                frames.append(write.answer)
        rows_insert(Frame, frames)
        seen = {w.charge_point_id: w.seen_at for w in writes if w.seen_at is not None}
        if seen:
            stations.charge_points_seen(seen=seen)
        for write in writes:
            if write.flags:
                stations.charge_point_flags_add(
                    charge_point_id=write.charge_point_id, flags=write.flags
                )
        reports = [w.meter_values for w in writes if w.meter_values is not None]
        if reports:
            sessions.meter_samples_record_many(reports=reports)


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
