"""Replay imported charging sessions as live OCPP 1.6J traffic.

One OCPP client (the `ocpp` package over `websockets`) per charger of a site
connects to the portal with the charger's password and plays that charger's
imported sessions in order, at a chosen speed: plug-in (StatusNotification
Preparing), Authorize, StartTransaction, MeterValues every N simulated seconds
with the session's energy spread evenly over its charging time, SuspendedEV
once the car is full, StopTransaction and Available again. Timestamps are the
wall clock (UTC, ending in Z): the portal sees a site charging now, with the
shape of real sessions.

Passwords are stored hashed, so the replay cannot learn one: it generates and
sets a password for a charger that has none, and keeps the passwords it set in
a credentials file (mode 0600) to reuse them on the next run. A charger whose
password the replay did not set is skipped unless ``reset_passwords`` is given.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import websockets
from django.conf import settings
from django.db.models import F
from ocpp.routing import on
from ocpp.v16 import ChargePoint as OcppChargePoint
from ocpp.v16 import call, call_result
from ocpp.v16.enums import (
    Action,
    ChargePointErrorCode,
    ChargePointStatus,
    Measurand,
    ReadingContext,
    Reason,
    RemoteStartStopStatus,
    ResetStatus,
    UnitOfMeasure,
)

from sessions.models import ChargingSession, SessionSource
from stations.models import ChargePoint
from stations.services import charge_point_password_check, charge_point_password_set

logger = logging.getLogger(__name__)

SUBPROTOCOL = "ocpp1.6"
# Imported sessions with no idTag still need one to authorize with.
FALLBACK_ID_TAG = "REPLAY"
# A charger stack sends its heartbeat at the interval BootNotification gave,
# in real time; a floor keeps a misconfigured interval from flooding the portal.
MIN_HEARTBEAT_S = 10
# How long one CALL may wait for its answer (the ocpp package's own default).
CALL_TIMEOUT_S = 30


def _now_z() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# --- what to replay ---------------------------------------------------------------


@dataclass(frozen=True)
class ReplaySession:
    """One imported session, as the replay needs it (simulated times, Wh)."""

    session_id: int
    connector_number: int
    id_tag: str
    plugged_in_at: datetime
    charging_done_at: datetime
    unplugged_at: datetime
    energy_wh: int


@dataclass
class ChargerPlan:
    identity: str
    password: str
    connectors: list[int]
    sessions: list[ReplaySession] = field(default_factory=list)


@dataclass
class ReplaySummary:
    chargers: int = 0
    chargers_skipped: list[str] = field(default_factory=list)
    sessions_planned: int = 0
    sessions_overlapping_skipped: int = 0
    sessions_started: int = 0
    sessions_stopped: int = 0
    meter_values_sent: int = 0
    transaction_ids: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def replay_sessions_select(
    *,
    site_code: str,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = None,
) -> list[ChargingSession]:
    """Imported sessions of a site to replay, earliest first."""
    sessions = (
        ChargingSession.objects.filter(
            charge_point__site__code=site_code,
            source=SessionSource.IMPORT,
            stopped_at__isnull=False,
            energy_wh__isnull=False,
        )
        .filter(stopped_at__gt=F("started_at"))
        .select_related("charge_point", "id_token")
        .order_by("started_at", "pk")
    )
    if since is not None:
        sessions = sessions.filter(started_at__gte=since)
    if until is not None:
        sessions = sessions.filter(started_at__lt=until)
    if limit is not None:
        sessions = sessions[:limit]
    return list(sessions)


def _replay_session(session: ChargingSession) -> ReplaySession:
    done = session.done_charging_at or session.stopped_at
    done = min(max(done, session.started_at), session.stopped_at)
    id_tag = (
        session.id_token.value if session.id_token_id else session.id_tag
    ) or FALLBACK_ID_TAG
    return ReplaySession(
        session_id=session.pk,
        connector_number=session.connector_number or 1,
        id_tag=id_tag[:20],
        plugged_in_at=session.started_at,
        charging_done_at=done,
        unplugged_at=session.stopped_at,
        energy_wh=max(0, int(session.energy_wh)),
    )


# --- passwords ----------------------------------------------------------------


def replay_credentials_path() -> Path:
    return Path(settings.VAR_DIR) / "replay_credentials.json"


def _credentials_load(path: Path) -> dict[str, str]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}


def _credentials_save(path: Path, credentials: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(credentials, handle, indent=1, sort_keys=True)
    tmp.replace(path)


@dataclass
class PasswordsReady:
    passwords: dict[str, str]
    generated: list[str]
    skipped: list[str]


def replay_passwords_ensure(
    *,
    charge_points: list[ChargePoint],
    credentials_path: Path,
    reset_passwords: bool = False,
) -> PasswordsReady:
    """A working password for each charger; set one where none is known."""
    credentials = _credentials_load(credentials_path)
    ready = PasswordsReady(passwords={}, generated=[], skipped=[])
    for charge_point in charge_points:
        known = credentials.get(charge_point.identity)
        if known and charge_point_password_check(
            charge_point=charge_point, password=known
        ):
            ready.passwords[charge_point.identity] = known
            continue
        if charge_point.password_hash and not reset_passwords:
            ready.skipped.append(charge_point.identity)
            continue
        password = charge_point_password_set(charge_point=charge_point)
        credentials[charge_point.identity] = password
        ready.passwords[charge_point.identity] = password
        ready.generated.append(charge_point.identity)
    if ready.generated:
        _credentials_save(credentials_path, credentials)
    return ready


def replay_plan_build(
    *,
    sessions: list[ChargingSession],
    passwords: dict[str, str],
    summary: ReplaySummary,
) -> list[ChargerPlan]:
    """Group sessions per charger; drop one that overlaps the last on its connector."""
    plans: dict[str, ChargerPlan] = {}
    busy_until: dict[tuple[str, int], datetime] = {}
    for session in sessions:
        identity = session.charge_point.identity
        if identity not in passwords:
            continue
        replay = _replay_session(session)
        key = (identity, replay.connector_number)
        if key in busy_until and replay.plugged_in_at < busy_until[key]:
            # One connector charges one car: a charger cannot report a second
            # plug-in before the first car left.
            summary.sessions_overlapping_skipped += 1
            continue
        busy_until[key] = replay.unplugged_at
        plan = plans.setdefault(
            identity,
            ChargerPlan(identity=identity, password=passwords[identity], connectors=[]),
        )
        if replay.connector_number not in plan.connectors:
            plan.connectors.append(replay.connector_number)
        plan.sessions.append(replay)
    summary.chargers = len(plans)
    summary.sessions_planned = sum(len(p.sessions) for p in plans.values())
    return list(plans.values())


# --- one charger ------------------------------------------------------------------


class ReplayChargePoint(OcppChargePoint):
    """The client side: answers what the portal asks, as a charger would."""

    def __init__(self, identity: str, connection) -> None:
        super().__init__(identity, connection, response_timeout=CALL_TIMEOUT_S)
        self.remote_stop: dict[int, asyncio.Event] = {}

    @on(Action.remote_stop_transaction)
    async def on_remote_stop(
        self, transaction_id: int
    ) -> call_result.RemoteStopTransaction:
        event = self.remote_stop.get(transaction_id)
        if event is None:
            return call_result.RemoteStopTransaction(
                status=RemoteStartStopStatus.rejected
            )
        event.set()
        return call_result.RemoteStopTransaction(status=RemoteStartStopStatus.accepted)

    @on(Action.reset)
    async def on_reset(self, type: str) -> call_result.Reset:  # noqa: A002 (OCPP name)
        return call_result.Reset(status=ResetStatus.rejected)


class _Clock:
    """Simulated time: ``speed`` simulated seconds pass per real second."""

    def __init__(self, *, sim_start: datetime, speed: float) -> None:
        self.sim_start = sim_start
        self.speed = speed
        self.loop = asyncio.get_running_loop()
        self.real_start = self.loop.time()

    def now(self) -> datetime:
        elapsed = (self.loop.time() - self.real_start) * self.speed
        return self.sim_start + timedelta(seconds=elapsed)

    async def sleep_until(self, moment: datetime, stop: asyncio.Event | None = None):
        """Wait until the simulated ``moment``; True if ``stop`` was set first."""
        delay = (moment - self.now()).total_seconds() / self.speed
        if delay <= 0:
            return bool(stop and stop.is_set())
        if stop is None:
            await asyncio.sleep(delay)
            return False
        try:
            await asyncio.wait_for(stop.wait(), delay)
        except TimeoutError:
            return False
        return True


def _basic_auth(identity: str, password: str) -> str:
    token = base64.b64encode(f"{identity}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


async def _status(cp: ReplayChargePoint, connector: int, status: str) -> None:
    await cp.call(
        call.StatusNotification(
            connector_id=connector,
            error_code=ChargePointErrorCode.no_error,
            status=status,
            timestamp=_now_z(),
        )
    )


def _meter_value(register_wh: float, power_w: float, context: str) -> dict:
    return {
        "timestamp": _now_z(),
        "sampledValue": [
            {
                "value": str(round(register_wh)),
                "context": context,
                "measurand": Measurand.energy_active_import_register,
                "unit": UnitOfMeasure.wh,
            },
            {
                "value": str(round(power_w)),
                "context": context,
                "measurand": Measurand.power_active_import,
                "unit": UnitOfMeasure.w,
            },
        ],
    }


def _charged_share(session: ReplaySession, moment: datetime) -> float:
    """How much of the session's energy is delivered at ``moment`` (0 to 1)."""
    charging_s = (session.charging_done_at - session.plugged_in_at).total_seconds()
    if charging_s <= 0:
        return 1.0
    done = min(moment, session.charging_done_at) - session.plugged_in_at
    done_s = done.total_seconds()
    return min(1.0, max(0.0, done_s / charging_s))


async def _replay_one_session(
    cp: ReplayChargePoint,
    session: ReplaySession,
    *,
    clock: _Clock,
    meter_interval_s: float,
    register_wh: dict[int, float],
    summary: ReplaySummary,
) -> None:
    connector = session.connector_number
    await clock.sleep_until(session.plugged_in_at)
    await _status(cp, connector, ChargePointStatus.preparing)
    await cp.call(call.Authorize(id_tag=session.id_tag))
    meter_start = register_wh[connector]
    started = await cp.call(
        call.StartTransaction(
            connector_id=connector,
            id_tag=session.id_tag,
            meter_start=round(meter_start),
            timestamp=_now_z(),
        )
    )
    transaction_id = started.transaction_id
    summary.sessions_started += 1
    summary.transaction_ids.append(transaction_id)
    stop = asyncio.Event()
    cp.remote_stop[transaction_id] = stop
    await _status(cp, connector, ChargePointStatus.charging)

    charging_s = (session.charging_done_at - session.plugged_in_at).total_seconds()
    power_w = session.energy_wh * 3600 / charging_s if charging_s > 0 else 0.0
    moment = session.plugged_in_at
    full = False
    stopped_remotely = False
    while True:
        moment = min(moment + timedelta(seconds=meter_interval_s), session.unplugged_at)
        if moment >= session.unplugged_at:
            break
        if await clock.sleep_until(moment, stop):
            stopped_remotely = True
            break
        share = _charged_share(session, moment)
        charging = moment < session.charging_done_at
        if not charging and not full:
            full = True
            await _status(cp, connector, ChargePointStatus.suspended_ev)
        await cp.call(
            call.MeterValues(
                connector_id=connector,
                transaction_id=transaction_id,
                meter_value=[
                    _meter_value(
                        meter_start + share * session.energy_wh,
                        power_w if charging else 0.0,
                        ReadingContext.sample_periodic,
                    )
                ],
            )
        )
        summary.meter_values_sent += 1

    if not stopped_remotely:
        stopped_remotely = await clock.sleep_until(session.unplugged_at, stop)
    share = 1.0
    if stopped_remotely:
        share = _charged_share(session, clock.now())
    meter_stop = meter_start + share * session.energy_wh
    await cp.call(
        call.StopTransaction(
            transaction_id=transaction_id,
            id_tag=session.id_tag,
            meter_stop=round(meter_stop),
            timestamp=_now_z(),
            reason=Reason.remote if stopped_remotely else Reason.ev_disconnected,
            transaction_data=[
                _meter_value(meter_stop, 0.0, ReadingContext.transaction_end)
            ],
        )
    )
    register_wh[connector] = float(round(meter_stop))
    cp.remote_stop.pop(transaction_id, None)
    summary.sessions_stopped += 1
    await _status(cp, connector, ChargePointStatus.finishing)
    await _status(cp, connector, ChargePointStatus.available)


async def _heartbeats(cp: ReplayChargePoint, interval_s: float) -> None:
    while True:
        await asyncio.sleep(max(interval_s, MIN_HEARTBEAT_S))
        await cp.call(call.Heartbeat())


async def _replay_charger(
    plan: ChargerPlan,
    *,
    url: str,
    clock: _Clock,
    meter_interval_s: float,
    summary: ReplaySummary,
) -> None:
    address = url.rstrip("/") + "/" + plan.identity
    async with websockets.connect(
        address,
        subprotocols=[SUBPROTOCOL],
        additional_headers={"Authorization": _basic_auth(plan.identity, plan.password)},
        open_timeout=30,
    ) as connection:
        cp = ReplayChargePoint(plan.identity, connection)
        listener = asyncio.create_task(cp.start())
        heartbeat = None
        try:
            boot = await cp.call(
                call.BootNotification(
                    charge_point_vendor="GIU-replay",
                    charge_point_model="replay_sessions",
                )
            )
            heartbeat = asyncio.create_task(_heartbeats(cp, float(boot.interval)))
            await _status(cp, 0, ChargePointStatus.available)
            for connector in sorted(plan.connectors):
                await _status(cp, connector, ChargePointStatus.available)
            register_wh = {connector: 0.0 for connector in plan.connectors}
            for session in plan.sessions:
                await _replay_one_session(
                    cp,
                    session,
                    clock=clock,
                    meter_interval_s=meter_interval_s,
                    register_wh=register_wh,
                    summary=summary,
                )
        finally:
            if heartbeat is not None:
                heartbeat.cancel()
            listener.cancel()


async def replay_run(
    *,
    plans: list[ChargerPlan],
    url: str,
    speed: float,
    meter_interval_s: float,
    summary: ReplaySummary,
    progress: Callable[[str], None] | None = None,
) -> ReplaySummary:
    """Play every charger's sessions at once; returns what was sent."""
    if not plans:
        return summary
    sim_start = min(s.plugged_in_at for p in plans for s in p.sessions)
    clock = _Clock(sim_start=sim_start, speed=speed)

    async def one(plan: ChargerPlan) -> None:
        try:
            await _replay_charger(
                plan,
                url=url,
                clock=clock,
                meter_interval_s=meter_interval_s,
                summary=summary,
            )
        except (OSError, websockets.WebSocketException, TimeoutError) as exc:
            summary.errors.append(f"{plan.identity}: {type(exc).__name__}: {exc}")
            logger.warning(
                "Replay of a charger failed: %s",
                exc,
                extra={"charge_point": plan.identity},
            )
            return
        if progress:
            progress(f"{plan.identity}: {len(plan.sessions)} sessions replayed")

    await asyncio.gather(*(one(plan) for plan in plans))
    return summary
