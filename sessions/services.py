"""Writes on charging sessions, meter samples and id tokens.

Called by the OCPP bridge with plain values: aware UTC datetimes, energy in
Wh, raw strings kept beside normalised numbers. Transaction messages arrive
more than once (a charger resends them until acknowledged), out of order and
for transactions the portal never issued: every write here is idempotent and
nothing a charger reported is dropped.
"""

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from giu_ev.metrics import ENERGY_DELIVERED
from sessions.models import (
    ChargingSession,
    IdToken,
    IdTokenStatus,
    MeterSample,
    SessionSource,
    TransactionEvent,
    TransactionEventKind,
)
from sessions.units import ENERGY_REGISTER, POWER_IMPORT, reading_normalise
from stations.models import ChargePoint, Connector

logger = logging.getLogger(__name__)

# A register that moved less than 1/100 of what the reported power implies is
# read as kWh labelled Wh (field case FC-13: 1 Wh in 7 min at 9.4 kW). Below
# 100 Wh expected the check says nothing: meters round.
UNIT_SUSPECT_RATIO = 100
UNIT_SUSPECT_MIN_EXPECTED_WH = 100.0


# --- Id tokens ----------------------------------------------------------------


@dataclass(frozen=True)
class Authorization:
    status: str
    expiry_date: datetime | None = None
    parent_id_tag: str = ""
    id_token_id: int | None = None
    vehicle_id: int | None = None


def id_token_authorize(*, id_tag: str, at: datetime | None = None) -> Authorization:
    """The status of an idTag: matched without regard to case, expiry checked."""
    at = at or timezone.now()
    token = IdToken.objects.filter(value__iexact=id_tag.strip()).first()
    if token is None:
        return Authorization(status=IdTokenStatus.INVALID)

    status = token.status
    if status == IdTokenStatus.ACCEPTED and token.expires_at and token.expires_at <= at:
        status = IdTokenStatus.EXPIRED
    return Authorization(
        status=status,
        expiry_date=token.expires_at,
        parent_id_tag=token.parent_id_tag,
        id_token_id=token.pk,
        vehicle_id=token.vehicle_id,
    )


# --- Sessions -----------------------------------------------------------------


@dataclass(frozen=True)
class SessionStarted:
    session_id: int
    authorization: Authorization
    duplicate: bool


def session_start(
    *,
    charge_point_id: int,
    connector_number: int,
    id_tag: str,
    meter_start_wh: int | None,
    started_at: datetime,
    raw_timestamp: str = "",
    timestamp_zone_assumed: bool = False,
    reservation_id: int | None = None,
    flags: list[str] | None = None,
    message_id: str = "",
    payload: dict | None = None,
) -> SessionStarted:
    """Open a session, or return the one this start already opened.

    The natural key of a start is (charger, connector, idTag, start time,
    meterStart): a repeat after a lost answer or a reconnect gets the same
    transactionId (field cases FC-05, FC-06). A later start on a connector that
    still has an open session ends that session as ``superseded``.
    """
    flags = list(flags or [])
    authorization = id_token_authorize(id_tag=id_tag, at=started_at)

    with transaction.atomic():
        # One writer per charger at a time: a repeat can arrive on a new socket
        # while the old one is still being torn down.
        charge_point = ChargePoint.objects.select_for_update().get(pk=charge_point_id)
        existing = (
            ChargingSession.objects.filter(
                charge_point=charge_point,
                source=SessionSource.OCPP,
                connector_number=connector_number,
                id_tag__iexact=id_tag,
                started_at=started_at,
                meter_start_wh=meter_start_wh,
            )
            .order_by("pk")
            .first()
        )
        if existing is not None:
            TransactionEvent.objects.create(
                kind=TransactionEventKind.DUPLICATE_START,
                charge_point=charge_point,
                session=existing,
                transaction_ref=existing.pk,
                message_id=message_id[:64],
                payload=payload or {},
            )
            if "duplicate_start" not in existing.flags:
                existing.flags = [*existing.flags, "duplicate_start"]
                existing.save(update_fields=["flags", "updated_at"])
            logger.info(
                "Repeated StartTransaction answered with the same transaction",
                extra={"charge_point": charge_point.identity, "session": existing.pk},
            )
            return SessionStarted(
                session_id=existing.pk, authorization=authorization, duplicate=True
            )

        for open_session in ChargingSession.objects.filter(
            charge_point=charge_point,
            source=SessionSource.OCPP,
            connector_number=connector_number,
            stopped_at__isnull=True,
            started_at__lt=started_at,
        ):
            open_session.stopped_at = started_at
            open_session.stop_reason = "superseded"
            open_session.flags = [*open_session.flags, "superseded"]
            open_session.save(
                update_fields=["stopped_at", "stop_reason", "flags", "updated_at"]
            )
            TransactionEvent.objects.create(
                kind=TransactionEventKind.SUPERSEDED,
                charge_point=charge_point,
                session=open_session,
                transaction_ref=open_session.pk,
                message_id=message_id[:64],
                payload=payload or {},
            )

        connector = None
        if connector_number >= 1:
            connector, _ = Connector.objects.get_or_create(
                charge_point=charge_point, number=connector_number
            )
        session = ChargingSession.objects.create(
            charge_point=charge_point,
            connector=connector,
            connector_number=connector_number,
            id_token_id=authorization.id_token_id,
            vehicle_id=authorization.vehicle_id,
            id_tag=id_tag[:255],
            started_at=started_at,
            meter_start_wh=meter_start_wh,
            energy_wh=0,
            reservation_id=reservation_id,
            raw_start_timestamp=raw_timestamp[:64],
            timestamp_zone_assumed=timestamp_zone_assumed,
            flags=flags,
            source=SessionSource.OCPP,
        )
    return SessionStarted(
        session_id=session.pk, authorization=authorization, duplicate=False
    )


@dataclass(frozen=True)
class SessionStopped:
    outcome: str  # stopped | duplicate | conflict | orphan | orphan_duplicate
    session_id: int | None
    authorization: Authorization | None
    energy_wh: int | None = None


def session_stop(
    *,
    charge_point_id: int,
    transaction_ref: int,
    meter_stop_wh: int | None,
    stopped_at: datetime,
    raw_timestamp: str = "",
    timestamp_zone_assumed: bool = False,
    reason: str = "",
    id_tag: str = "",
    samples: list[dict] | None = None,
    flags: list[str] | None = None,
    message_id: str = "",
    payload: dict | None = None,
) -> SessionStopped:
    """Close a session once; keep repeats, conflicts and orphans for audit.

    The first stop wins (FC-08); a repeat with other values is kept as a
    ``conflicting_stop`` event, never written over the first. A stop for a
    transaction the portal did not issue (FC-09) becomes an unmatched session
    and an ``orphan_stop`` event: no other session is closed on a guess.
    """
    flags = list(flags or [])
    authorization = id_token_authorize(id_tag=id_tag, at=stopped_at) if id_tag else None

    with transaction.atomic():
        charge_point = (
            ChargePoint.objects.select_for_update()
            .select_related("site")
            .get(pk=charge_point_id)
        )
        session = ChargingSession.objects.filter(
            pk=transaction_ref, charge_point=charge_point, source=SessionSource.OCPP
        ).first()

        if session is None:
            return _orphan_stop(
                charge_point=charge_point,
                transaction_ref=transaction_ref,
                meter_stop_wh=meter_stop_wh,
                stopped_at=stopped_at,
                raw_timestamp=raw_timestamp,
                timestamp_zone_assumed=timestamp_zone_assumed,
                reason=reason,
                id_tag=id_tag,
                samples=samples or [],
                flags=flags,
                message_id=message_id,
                payload=payload or {},
                authorization=authorization,
            )

        if session.stopped_at is not None and session.stop_reason != "superseded":
            same = (
                session.meter_stop_wh == meter_stop_wh
                and session.stopped_at == stopped_at
            )
            kind = (
                TransactionEventKind.DUPLICATE_STOP
                if same
                else TransactionEventKind.CONFLICTING_STOP
            )
            TransactionEvent.objects.create(
                kind=kind,
                charge_point=charge_point,
                session=session,
                transaction_ref=transaction_ref,
                message_id=message_id[:64],
                payload=payload or {},
            )
            return SessionStopped(
                outcome="duplicate" if same else "conflict",
                session_id=session.pk,
                authorization=authorization,
                energy_wh=session.energy_wh,
            )

        if samples:
            _samples_store(
                charge_point=charge_point,
                session=session,
                connector_number=session.connector_number,
                transaction_ref=transaction_ref,
                samples=samples,
            )
            session.refresh_from_db()

        energy_wh = session.energy_wh
        if meter_stop_wh is not None and session.meter_start_wh is not None:
            delta = (meter_stop_wh - session.meter_start_wh) * charge_point.energy_scale
            if delta >= 0:
                energy_wh = round(delta)
            else:
                flags.append("meter_stop_below_start")
        session.stopped_at = stopped_at
        session.meter_stop_wh = meter_stop_wh
        session.energy_wh = energy_wh
        session.stop_reason = (reason or "Local")[:32]
        session.raw_stop_timestamp = raw_timestamp[:64]
        session.timestamp_zone_assumed = (
            session.timestamp_zone_assumed or timestamp_zone_assumed
        )
        session.flags = _merge(session.flags, flags)
        session.save()

    if energy_wh:
        ENERGY_DELIVERED.labels(site=charge_point.site.code).inc(energy_wh)
    return SessionStopped(
        outcome="stopped",
        session_id=session.pk,
        authorization=authorization,
        energy_wh=energy_wh,
    )


def _orphan_stop(
    *,
    charge_point: ChargePoint,
    transaction_ref: int,
    meter_stop_wh: int | None,
    stopped_at: datetime,
    raw_timestamp: str,
    timestamp_zone_assumed: bool,
    reason: str,
    id_tag: str,
    samples: list[dict],
    flags: list[str],
    message_id: str,
    payload: dict,
    authorization: Authorization | None,
) -> SessionStopped:
    earlier = (
        TransactionEvent.objects.filter(
            charge_point=charge_point,
            kind=TransactionEventKind.ORPHAN_STOP,
            transaction_ref=transaction_ref,
        )
        .order_by("pk")
        .first()
    )
    if earlier is not None:
        TransactionEvent.objects.create(
            kind=TransactionEventKind.DUPLICATE_STOP,
            charge_point=charge_point,
            session_id=earlier.session_id,
            transaction_ref=transaction_ref,
            message_id=message_id[:64],
            payload=payload,
        )
        return SessionStopped(
            outcome="orphan_duplicate",
            session_id=earlier.session_id,
            authorization=authorization,
        )

    # The start is unknown, so is the energy: the session row carries the stop
    # as reported and waits for an operator to reconcile it.
    session = ChargingSession.objects.create(
        charge_point=charge_point,
        connector_number=0,
        id_tag=id_tag[:255],
        id_token_id=authorization.id_token_id if authorization else None,
        started_at=stopped_at,
        stopped_at=stopped_at,
        meter_stop_wh=meter_stop_wh,
        energy_wh=None,
        stop_reason=(reason or "Local")[:32],
        raw_stop_timestamp=raw_timestamp[:64],
        timestamp_zone_assumed=timestamp_zone_assumed,
        is_unmatched=True,
        flags=_merge(flags, ["orphan_stop"]),
        source=SessionSource.OCPP,
    )
    TransactionEvent.objects.create(
        kind=TransactionEventKind.ORPHAN_STOP,
        charge_point=charge_point,
        session=session,
        transaction_ref=transaction_ref,
        message_id=message_id[:64],
        payload=payload,
    )
    if samples:
        _samples_store(
            charge_point=charge_point,
            session=session,
            connector_number=0,
            transaction_ref=transaction_ref,
            samples=samples,
        )
    logger.warning(
        "StopTransaction for a transaction the portal did not issue",
        extra={"charge_point": charge_point.identity, "session": session.pk},
    )
    return SessionStopped(
        outcome="orphan", session_id=session.pk, authorization=authorization
    )


# --- Meter samples ------------------------------------------------------------


def meter_samples_record(
    *,
    charge_point_id: int,
    connector_number: int,
    transaction_ref: int | None,
    samples: list[dict],
    message_id: str = "",
    payload: dict | None = None,
) -> int:
    """Store the sampled values of a MeterValues message; returns how many new.

    Each sample is a dict with ``timestamp`` (aware UTC), ``raw_timestamp``,
    ``measurand``, ``phase``, ``location``, ``context``, ``unit`` and
    ``raw_value`` as sent, and ``flags``. Values for an unknown transaction
    are kept without a session and audited.
    """
    with transaction.atomic():
        charge_point = ChargePoint.objects.get(pk=charge_point_id)
        session = None
        if transaction_ref is not None:
            session = ChargingSession.objects.filter(
                pk=transaction_ref,
                charge_point=charge_point,
                source=SessionSource.OCPP,
            ).first()
            if session is None:
                for sample in samples:
                    sample["flags"] = _merge(sample.get("flags", []), ["unknown_tx"])
                seen = TransactionEvent.objects.filter(
                    charge_point=charge_point,
                    kind=TransactionEventKind.ORPHAN_METER_VALUES,
                    transaction_ref=transaction_ref,
                ).exists()
                if not seen:
                    TransactionEvent.objects.create(
                        kind=TransactionEventKind.ORPHAN_METER_VALUES,
                        charge_point=charge_point,
                        transaction_ref=transaction_ref,
                        message_id=message_id[:64],
                        payload=payload or {},
                    )
        return _samples_store(
            charge_point=charge_point,
            session=session,
            connector_number=connector_number,
            transaction_ref=transaction_ref,
            samples=samples,
        )


def meter_samples_renormalise(*, charge_point: ChargePoint) -> int:
    """Recompute normalised values from the raw ones, e.g. after a scale change."""
    changed = []
    for sample in MeterSample.objects.filter(charge_point=charge_point).iterator():
        normalised = reading_normalise(
            raw_value=sample.raw_value,
            unit=sample.unit,
            measurand=sample.measurand,
            energy_scale=charge_point.energy_scale,
        )
        other_flags = [
            f for f in sample.flags if f not in {"energy_scaled", "unit_not_in_enum"}
        ]
        sample.value = normalised.value
        sample.normalised_unit = normalised.unit
        sample.flags = _merge(other_flags, normalised.flags)
        changed.append(sample)
    MeterSample.objects.bulk_update(
        changed, ["value", "normalised_unit", "flags"], batch_size=1000
    )
    for session in ChargingSession.objects.filter(
        charge_point=charge_point, source=SessionSource.OCPP
    ):
        if session.meter_stop_wh is not None and session.meter_start_wh is not None:
            delta = (session.meter_stop_wh - session.meter_start_wh) * (
                charge_point.energy_scale
            )
            session.energy_wh = round(delta) if delta >= 0 else None
            session.save(update_fields=["energy_wh", "updated_at"])
        else:
            _session_energy_update(session=session)
    return len(changed)


def _samples_store(
    *,
    charge_point: ChargePoint,
    session: ChargingSession | None,
    connector_number: int,
    transaction_ref: int | None,
    samples: list[dict],
) -> int:
    rows = []
    for sample in samples:
        normalised = reading_normalise(
            raw_value=sample["raw_value"],
            unit=sample.get("unit", ""),
            measurand=sample["measurand"],
            energy_scale=charge_point.energy_scale,
        )
        rows.append(
            MeterSample(
                session=session,
                charge_point=charge_point,
                connector_number=connector_number,
                transaction_ref=transaction_ref,
                timestamp=sample["timestamp"],
                raw_timestamp=sample.get("raw_timestamp", "")[:64],
                measurand=sample["measurand"][:64],
                phase=sample.get("phase", "")[:16],
                location=sample.get("location", "")[:32],
                context=sample.get("context", "")[:32],
                unit=sample.get("unit", "")[:32],
                raw_value=sample["raw_value"],
                value=normalised.value,
                normalised_unit=normalised.unit,
                flags=_merge(sample.get("flags", []), normalised.flags),
            )
        )
    rows = _without_stored(charge_point=charge_point, session=session, rows=rows)
    _plausibility_check(charge_point=charge_point, session=session, rows=rows)
    if session is not None:
        _register_mode_check(session=session, rows=rows)
    MeterSample.objects.bulk_create(rows, ignore_conflicts=session is not None)
    if session is not None:
        _session_energy_update(session=session)
    return len(rows)


def _key(row: MeterSample) -> tuple:
    return (
        row.timestamp,
        row.measurand,
        row.phase,
        row.location,
        row.context,
        row.transaction_ref,
        row.connector_number,
    )


def _without_stored(
    *,
    charge_point: ChargePoint,
    session: ChargingSession | None,
    rows: list[MeterSample],
) -> list[MeterSample]:
    """Drop readings already stored (a resent message) and repeats in one batch.

    A second reading with the same key but another value is not stored as a
    row (the key is unique per session); the first one is flagged
    ``conflicting_copy`` and the frame log keeps both.
    """
    if not rows:
        return rows
    stamps = {row.timestamp for row in rows}
    stored = MeterSample.objects.filter(
        charge_point=charge_point, session=session, timestamp__in=stamps
    )
    known = {_key(row) for row in stored}
    fresh: dict[tuple, MeterSample] = {}
    for row in rows:
        key = _key(row)
        if key in fresh:
            if fresh[key].raw_value != row.raw_value:
                fresh[key].flags = _merge(fresh[key].flags, ["conflicting_copy"])
        elif key not in known:
            fresh[key] = row
    return list(fresh.values())


def _is_register(row: MeterSample) -> bool:
    return (
        row.measurand == ENERGY_REGISTER
        and not row.phase
        and row.location in ("", "Outlet")
        and row.value is not None
    )


def _plausibility_check(
    *,
    charge_point: ChargePoint,
    session: ChargingSession | None,
    rows: list[MeterSample],
) -> None:
    """Flag energy registers that cannot match the power reported beside them."""
    registers = sorted((r for r in rows if _is_register(r)), key=lambda r: r.timestamp)
    if not registers:
        return
    power_at = {
        r.timestamp: r.value
        for r in rows
        if r.measurand == POWER_IMPORT and not r.phase and r.value is not None
    }
    previous = (
        MeterSample.objects.filter(
            charge_point=charge_point,
            session=session,
            connector_number=registers[0].connector_number,
            measurand=ENERGY_REGISTER,
            phase="",
            timestamp__lt=registers[0].timestamp,
            value__isnull=False,
        )
        .order_by("-timestamp")
        .first()
    )
    if previous is not None:
        registers.insert(0, previous)
        earlier_power = (
            MeterSample.objects.filter(
                charge_point=charge_point,
                session=session,
                measurand=POWER_IMPORT,
                phase="",
                timestamp=previous.timestamp,
            )
            .values_list("value", flat=True)
            .first()
        )
        if earlier_power is not None:
            power_at.setdefault(previous.timestamp, earlier_power)

    suspect = False
    for before, after in zip(registers, registers[1:], strict=False):
        pair = (power_at.get(before.timestamp), power_at.get(after.timestamp))
        powers = [p for p in pair if p is not None]
        if not powers:
            continue
        hours = (after.timestamp - before.timestamp).total_seconds() / 3600
        expected_wh = sum(powers) / len(powers) * hours
        moved_wh = after.value - before.value
        if (
            expected_wh >= UNIT_SUSPECT_MIN_EXPECTED_WH
            and moved_wh >= 0
            and moved_wh * UNIT_SUSPECT_RATIO < expected_wh
        ):
            suspect = True
            for row in (before, after):
                if row.pk is None:
                    row.flags = _merge(row.flags, ["unit_suspect"])
    if suspect:
        if session is not None and "unit_suspect" not in session.flags:
            session.flags = [*session.flags, "unit_suspect"]
            session.save(update_fields=["flags", "updated_at"])
        if "unit_suspect" not in (charge_point.flags or []):
            charge_point.flags = [*(charge_point.flags or []), "unit_suspect"]
            charge_point.save(update_fields=["flags"])
        logger.warning(
            "Energy register does not match reported power: kWh labelled Wh?",
            extra={"charge_point": charge_point.identity},
        )


def _register_mode_check(*, session: ChargingSession, rows: list[MeterSample]) -> None:
    """Detect firmware that reports the register relative to the session start.

    The 1.6 errata say registers are lifetime readings; some firmware (FC-18)
    restarts them at 0 per session. A reading below meterStart can only mean
    that, and the decision is recorded as a flag on the session.
    """
    if session.meter_start_wh is None:
        return
    start_wh = session.meter_start_wh * session.charge_point.energy_scale
    for row in rows:
        if _is_register(row) and row.value < start_wh:
            row.flags = _merge(row.flags, ["register_session_relative"])
            if "register_session_relative" not in session.flags:
                session.flags = [*session.flags, "register_session_relative"]
                session.save(update_fields=["flags", "updated_at"])


def _session_energy_update(*, session: ChargingSession) -> None:
    """Live energy of a running session from its newest register reading."""
    if session.stopped_at is not None and session.meter_stop_wh is not None:
        return
    latest = (
        MeterSample.objects.filter(
            session=session,
            measurand=ENERGY_REGISTER,
            phase="",
            location__in=["", "Outlet"],
            value__isnull=False,
        )
        .order_by("-timestamp")
        .first()
    )
    if latest is None:
        return
    if "register_session_relative" in session.flags or session.meter_start_wh is None:
        energy = latest.value
    else:
        energy = latest.value - session.meter_start_wh * (
            session.charge_point.energy_scale
        )
    session.energy_wh = max(0, round(energy))
    session.save(update_fields=["energy_wh", "updated_at"])


def _merge(first: list[str], second: list[str]) -> list[str]:
    merged = list(first)
    for item in second:
        if item not in merged:
            merged.append(item)
    return merged
