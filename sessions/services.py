"""Writes on charging sessions, meter samples and id tokens.

Called by the OCPP bridge with plain values: aware UTC datetimes, energy in
Wh, raw strings kept beside normalised numbers. Transaction messages arrive
more than once (a charger resends them until acknowledged), out of order and
for transactions the portal never issued: every write here is idempotent and
nothing a charger reported is dropped.
"""

import functools
import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from giu_ev.bulk import aware, json_value, rows_insert
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


@dataclass
class MeterValuesReport:
    """The sampled values of one MeterValues message, as the bridge read them.

    Each sample is a dict with ``timestamp`` (aware UTC), ``raw_timestamp``,
    ``measurand``, ``phase``, ``location``, ``context``, ``unit`` and
    ``raw_value`` as sent, and ``flags``.
    """

    charge_point_id: int
    connector_number: int
    transaction_ref: int | None
    samples: list[dict]
    message_id: str = ""
    payload: dict | None = None


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

    Samples are described on MeterValuesReport. Values for an unknown
    transaction are kept without a session and audited. The one-message form
    of ``meter_samples_record_many`` (which the OCPP bridge uses).
    """
    report = MeterValuesReport(
        charge_point_id=charge_point_id,
        connector_number=connector_number,
        transaction_ref=transaction_ref,
        samples=samples,
        message_id=message_id,
        payload=payload,
    )
    return meter_samples_record_many(reports=[report])[0]


def meter_samples_record_many(*, reports: list[MeterValuesReport]) -> list[int]:
    """Store many MeterValues messages in one transaction; how many new, each.

    Each report is stored exactly as ``meter_samples_record`` stores it on its
    own. The work is done for all reports at once, so that a batch of chargers
    costs about as many statements as one charger: their sessions with the
    newest readings already stored (one query), all samples (one insert), the
    sessions' live energy (one update). The per-report look-ups of the older
    code run only where those newest readings cannot answer (a late or
    out-of-order message, an unknown transaction).

    No savepoint of its own: called inside a caller's transaction, a failure
    here rolls that transaction back with it, which is what the caller of a
    batch wants (it retries the reports one by one). A reading stored by
    another transaction at the same moment (a charger resending on a second
    socket) is not skipped but raises IntegrityError (the unique reading
    constraint); the caller's retry then finds it stored and skips it.
    """
    with transaction.atomic(savepoint=False):
        counts: dict[int, int] = {}
        pending = list(enumerate(reports))
        while pending:
            # Two messages of one transaction (or of one charger without a
            # transaction) in one batch: the later one is stored after the
            # earlier, in a round of its own, so that it sees the earlier rows.
            first, later, keys = [], [], set()
            for index, report in pending:
                key = (report.charge_point_id, report.transaction_ref)
                (later if key in keys else first).append((index, report))
                keys.add(key)
            counts.update(_meter_samples_round(first))
            pending = later
        return [counts[index] for index in range(len(reports))]


@dataclass(frozen=True)
class _StoredTail:
    """The newest readings stored for a session before this message.

    ``sample_at`` is the time of the newest stored sample (None: none stored).
    ``register_known`` says whether the newest energy register (no phase, with
    a value) is known: when no sample is stored, or when one is stored at
    ``sample_at`` (the usual case: the last message had one); ``register_*``
    then describe it, with the power reported at its time.
    """

    sample_at: datetime | None
    register_known: bool = True
    register_at: datetime | None = None
    register_value: float | None = None
    register_connector: int | None = None
    register_location: str | None = None
    register_power_w: float | None = None


# What the batch reads of a session and its charge point, in the models' field
# order (as Model.from_db wants them); the code that follows touches no other
# field of either (a deferred one would cost a query).
_SESSION_FIELDS = tuple(
    f.attname
    for f in ChargingSession._meta.concrete_fields
    if f.attname
    in {
        "id",
        "charge_point_id",
        "connector_number",
        "flags",
        "meter_start_wh",
        "meter_stop_wh",
        "stopped_at",
        "energy_wh",
    }
)
_CHARGE_POINT_FIELDS = tuple(
    f.attname
    for f in ChargePoint._meta.concrete_fields
    if f.attname in {"id", "identity", "energy_scale", "flags"}
)
_TAIL_FIELDS = ("measurand", "phase", "location", "connector_number", "value")


@functools.cache
def _tails_sql(count: int) -> str:
    """The statement of _sessions_with_tails for ``count`` session ids."""
    q = connection.ops.quote_name
    sessions = q(ChargingSession._meta.db_table)
    charge_points = q(ChargePoint._meta.db_table)
    samples = q(MeterSample._meta.db_table)
    columns = ", ".join(
        [
            *(f"s.{q(name)}" for name in _SESSION_FIELDS),
            *(f"c.{q(name)}" for name in _CHARGE_POINT_FIELDS),
            f"t.{q('timestamp')}",
            *(f"t.{q(name)}" for name in _TAIL_FIELDS),
        ]
    )
    # Only quoted names and placeholders go into the text; values are bound.
    newest = (
        f"SELECT MAX(m.{q('timestamp')}) FROM {samples} m"  # noqa: S608
        f" WHERE m.{q('session_id')} = s.{q('id')}"
    )
    return (
        f"SELECT {columns} FROM {sessions} s"  # noqa: S608
        f" JOIN {charge_points} c ON c.{q('id')} = s.{q('charge_point_id')}"
        f" LEFT JOIN {samples} t ON t.{q('session_id')} = s.{q('id')}"
        f" AND t.{q('timestamp')} = ({newest})"
        f" WHERE s.{q('id')} IN ({', '.join(['%s'] * count)})"
        f" AND s.{q('source')} = %s"
        f" ORDER BY s.{q('id')}, t.{q('id')}"
    )


def _sessions_with_tails(
    refs: set[int],
) -> tuple[dict[int, ChargingSession], dict[int, _StoredTail]]:
    """OCPP sessions by id with their charge point, and their stored tails.

    One statement for any number of sessions: each session with its charge
    point and the samples at the time of its newest sample (found through the
    (session, timestamp) index). Plain SQL: the ORM spends ten times the CPU
    on building this query (giu_ev/bulk.py).
    """
    ids = sorted(refs)
    with connection.cursor() as cursor:
        cursor.execute(_tails_sql(len(ids)), [*ids, SessionSource.OCPP])
        found = cursor.fetchall()

    sessions: dict[int, ChargingSession] = {}
    charge_points: dict[int, ChargePoint] = {}
    at_end: dict[int, list[tuple]] = {}
    ends: dict[int, datetime | None] = {}
    width = len(_SESSION_FIELDS)
    for row in found:
        pk = row[0]
        if pk not in sessions:
            values = dict(zip(_SESSION_FIELDS, row[:width], strict=True))
            values["flags"] = json_value(values["flags"])
            values["stopped_at"] = aware(values["stopped_at"])
            session = ChargingSession.from_db(
                connection.alias, _SESSION_FIELDS, list(values.values())
            )
            cp_values = dict(
                zip(
                    _CHARGE_POINT_FIELDS,
                    row[width : width + len(_CHARGE_POINT_FIELDS)],
                    strict=True,
                )
            )
            cp_values["flags"] = json_value(cp_values["flags"])
            charge_point = charge_points.get(cp_values["id"])
            if charge_point is None:
                charge_point = charge_points[cp_values["id"]] = ChargePoint.from_db(
                    connection.alias, _CHARGE_POINT_FIELDS, list(cp_values.values())
                )
            session.charge_point = charge_point
            sessions[pk] = session
            at_end[pk] = []
            ends[pk] = None
        sample = row[width + len(_CHARGE_POINT_FIELDS) :]
        if sample[0] is not None:
            ends[pk] = aware(sample[0])
            at_end[pk].append(tuple(sample[1:]))

    tails = {}
    for pk in sessions:
        at = ends[pk]
        if at is None:
            tails[pk] = _StoredTail(sample_at=None)
            continue
        registers = [
            row
            for row in at_end[pk]
            if row[0] == ENERGY_REGISTER and not row[1] and row[4] is not None
        ]
        if not registers:
            tails[pk] = _StoredTail(sample_at=at, register_known=False)
            continue
        power_w = next(
            (
                row[4]
                for row in at_end[pk]
                if row[0] == POWER_IMPORT and not row[1] and row[4] is not None
            ),
            None,
        )
        _, _, location, connector, value = registers[-1]
        tails[pk] = _StoredTail(
            sample_at=at,
            register_at=at,
            register_value=value,
            register_connector=connector,
            register_location=location,
            register_power_w=power_w,
        )
    return sessions, tails


def _meter_samples_round(
    reports: list[tuple[int, MeterValuesReport]],
) -> dict[int, int]:
    """Store reports of distinct sessions (or chargers without one) together."""
    refs = {r.transaction_ref for _, r in reports if r.transaction_ref is not None}
    sessions, tails = _sessions_with_tails(refs) if refs else ({}, {})
    # One instance per charger, so that flags added for one session are not
    # overwritten by another session's copy of the same row.
    charge_points = {s.charge_point_id: s.charge_point for s in sessions.values()}
    missing = {r.charge_point_id for _, r in reports} - charge_points.keys()
    if missing:
        charge_points.update(ChargePoint.objects.in_bulk(missing))

    counts: dict[int, int] = {}
    rows: list[MeterSample] = []
    touched: list[tuple[ChargingSession, list[MeterSample], _StoredTail]] = []
    for index, report in reports:
        charge_point = charge_points.get(report.charge_point_id)
        if charge_point is None:
            raise ChargePoint.DoesNotExist(
                f"No charge point {report.charge_point_id} for meter values."
            )
        session = sessions.get(report.transaction_ref)
        if session is not None and session.charge_point_id != charge_point.pk:
            session = None
        if report.transaction_ref is not None and session is None:
            _orphan_meter_values_note(charge_point=charge_point, report=report)
        tail = tails[session.pk] if session is not None else None
        fresh = _samples_prepare(
            charge_point=charge_point,
            session=session,
            connector_number=report.connector_number,
            transaction_ref=report.transaction_ref,
            samples=report.samples,
            tail=tail,
        )
        rows.extend(fresh)
        counts[index] = len(fresh)
        if session is not None:
            touched.append((session, fresh, tail))

    rows_insert(MeterSample, rows)
    updated = [
        session
        for session, fresh, tail in touched
        if _session_energy_set(session=session, rows=fresh, tail=tail)
    ]
    if updated:
        now = timezone.now()
        params: list = [connection.ops.adapt_datetimefield_value(now)]
        for session in updated:
            session.updated_at = now
            params += [session.pk, session.energy_wh]
        params += [session.pk for session in updated]
        with connection.cursor() as cursor:
            cursor.execute(_energy_update_sql(len(updated)), params)
    return counts


@functools.cache
def _energy_update_sql(count: int) -> str:
    """One UPDATE for the live energy of ``count`` sessions (ids twice)."""
    q = connection.ops.quote_name
    cases = " ".join(["WHEN %s THEN %s"] * count)
    # Only quoted names and placeholders go into the text; values are bound.
    return (
        f"UPDATE {q(ChargingSession._meta.db_table)}"  # noqa: S608
        f" SET {q('updated_at')} = %s,"
        f" {q('energy_wh')} = CASE {q('id')} {cases} END"
        f" WHERE {q('id')} IN ({', '.join(['%s'] * count)})"
    )


def _orphan_meter_values_note(
    *, charge_point: ChargePoint, report: MeterValuesReport
) -> None:
    """Flag values for a transaction the portal does not know; audit it once."""
    for sample in report.samples:
        sample["flags"] = _merge(sample.get("flags", []), ["unknown_tx"])
    seen = TransactionEvent.objects.filter(
        charge_point=charge_point,
        kind=TransactionEventKind.ORPHAN_METER_VALUES,
        transaction_ref=report.transaction_ref,
    ).exists()
    if not seen:
        TransactionEvent.objects.create(
            kind=TransactionEventKind.ORPHAN_METER_VALUES,
            charge_point=charge_point,
            transaction_ref=report.transaction_ref,
            message_id=report.message_id[:64],
            payload=report.payload or {},
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
    rows = _samples_prepare(
        charge_point=charge_point,
        session=session,
        connector_number=connector_number,
        transaction_ref=transaction_ref,
        samples=samples,
    )
    MeterSample.objects.bulk_create(rows, ignore_conflicts=session is not None)
    if session is not None and _session_energy_set(session=session, rows=rows):
        session.save(update_fields=["energy_wh", "updated_at"])
    return len(rows)


def _samples_prepare(
    *,
    charge_point: ChargePoint,
    session: ChargingSession | None,
    connector_number: int,
    transaction_ref: int | None,
    samples: list[dict],
    tail: _StoredTail | None = None,
) -> list[MeterSample]:
    """The rows to insert: normalised, without stored copies, flagged."""
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
    rows = _without_stored(
        charge_point=charge_point, session=session, rows=rows, tail=tail
    )
    _plausibility_check(
        charge_point=charge_point, session=session, rows=rows, tail=tail
    )
    if session is not None:
        _register_mode_check(session=session, rows=rows)
    return rows


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
    tail: _StoredTail | None = None,
) -> list[MeterSample]:
    """Drop readings already stored (a resent message) and repeats in one batch.

    A second reading with the same key but another value is not stored as a
    row (the key is unique per session); the first one is flagged
    ``conflicting_copy`` and the frame log keeps both. Readings all newer than
    the newest stored one (``tail``: the usual, in-order message) cannot be
    stored yet, and are not looked up.
    """
    if not rows:
        return rows
    stamps = {row.timestamp for row in rows}
    if tail is not None and (tail.sample_at is None or min(stamps) > tail.sample_at):
        known: set[tuple] = set()
    else:
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
    tail: _StoredTail | None = None,
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
    previous, earlier_power = _register_before(
        charge_point=charge_point, session=session, first=registers[0], tail=tail
    )
    if previous is not None:
        registers.insert(0, previous)
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
                if row is not previous:
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


def _register_before(
    *,
    charge_point: ChargePoint,
    session: ChargingSession | None,
    first: MeterSample,
    tail: _StoredTail | None,
) -> tuple[MeterSample | None, float | None]:
    """The stored register reading before ``first`` and the power at its time.

    The newest stored register is that reading when it is older than
    ``first`` and on the same connector (an in-order message); otherwise the
    database is asked.
    """
    if tail is not None and tail.register_known:
        if tail.register_at is None:
            return None, None
        if (
            tail.register_at < first.timestamp
            and tail.register_connector == first.connector_number
        ):
            previous = MeterSample(
                timestamp=tail.register_at, value=tail.register_value
            )
            return previous, tail.register_power_w
    previous = (
        MeterSample.objects.filter(
            charge_point=charge_point,
            session=session,
            connector_number=first.connector_number,
            measurand=ENERGY_REGISTER,
            phase="",
            timestamp__lt=first.timestamp,
            value__isnull=False,
        )
        .order_by("-timestamp")
        .first()
    )
    if previous is None:
        return None, None
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
    return previous, earlier_power


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
    if _session_energy_set(session=session):
        session.save(update_fields=["energy_wh", "updated_at"])


def _session_energy_set(
    *,
    session: ChargingSession,
    rows: list[MeterSample] | None = None,
    tail: _StoredTail | None = None,
) -> bool:
    """Set a running session's live energy from its newest register reading.

    ``rows`` were just stored; with the session's stored ``tail`` from before
    them the newest reading is known without a query, unless that tail's
    newest register is one the energy does not count (another location).
    Returns whether the session must be saved.
    """
    if session.stopped_at is not None and session.meter_stop_wh is not None:
        return False
    latest_wh = _latest_register_wh(session=session, rows=rows or [], tail=tail)
    if latest_wh is None:
        return False
    if "register_session_relative" in session.flags or session.meter_start_wh is None:
        energy = latest_wh
    else:
        energy = latest_wh - session.meter_start_wh * (
            session.charge_point.energy_scale
        )
    session.energy_wh = max(0, round(energy))
    session.updated_at = timezone.now()
    return True


def _latest_register_wh(
    *,
    session: ChargingSession,
    rows: list[MeterSample],
    tail: _StoredTail | None,
) -> float | None:
    if (
        tail is not None
        and tail.register_known
        and (tail.register_at is None or tail.register_location in ("", "Outlet"))
    ):
        candidates = [(row.timestamp, row.value) for row in rows if _is_register(row)]
        if tail.register_at is not None:
            candidates.append((tail.register_at, tail.register_value))
        if not candidates:
            return None
        return max(candidates, key=lambda candidate: candidate[0])[1]
    return (
        MeterSample.objects.filter(
            session=session,
            measurand=ENERGY_REGISTER,
            phase="",
            location__in=["", "Outlet"],
            value__isnull=False,
        )
        .order_by("-timestamp")
        .values_list("value", flat=True)
        .first()
    )


def _merge(first: list[str], second: list[str]) -> list[str]:
    merged = list(first)
    for item in second:
        if item not in merged:
            merged.append(item)
    return merged
