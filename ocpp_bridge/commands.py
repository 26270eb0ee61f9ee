"""Remote commands to chargers, from any process, over the channel layer.

``command_send`` (sync) and ``command_send_async`` check the payload against
the OCPP 1.6 schema, record a RemoteCommand, and hand the command to the group
of the charger; whichever process holds the charger's socket confirms it at
once and sends the CALL. The caller gets the charger's answer, its CallError,
a timeout, or "not connected" without waiting for the full timeout.
"""

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.utils import timezone

from giu_ev.metrics import COMMAND_LATENCY, COMMANDS
from ocpp_bridge.consumers import SEEN_WRITE_INTERVAL_S, charge_point_group
from ocpp_bridge.db import run_db
from ocpp_bridge.models import CommandOutcome
from ocpp_bridge.parsing import schema_deviations
from ocpp_bridge.services import command_create, command_finish
from stations.alerts import alert_open, alert_resolve
from stations.models import AlertKind, ChargePoint
from stations.services import (
    charge_point_capability_record,
    charge_point_disconnected,
)

logger = logging.getLogger(__name__)

# Beyond the charger's own timeout, how long to wait for the process holding
# the socket to report back (a channel-layer round trip is a few ms).
RESULT_MARGIN_S = 2.0
# Answers that mean the charger did not do what was asked.
REFUSED_STATUSES = frozenset({"Rejected", "Failed", "NotSupported", "Faulted"})


@dataclass(frozen=True)
class Field:
    """A form field for a command's payload on the station page."""

    name: str
    kind: str = "text"  # text | int | choice | json | datetime
    required: bool = True
    choices: tuple[str, ...] = ()
    default: str = ""
    help: str = ""


@dataclass(frozen=True)
class ActionSpec:
    label: str
    fields: tuple[Field, ...] = ()
    profile: str = "Core"


_CONNECTOR = Field("connectorId", "int", default="1")
_CONNECTOR_OPT = Field("connectorId", "int", required=False)

ACTIONS: dict[str, ActionSpec] = {
    "RemoteStartTransaction": ActionSpec(
        "Remote start",
        (Field("idTag"), _CONNECTOR_OPT, Field("chargingProfile", "json", False)),
    ),
    "RemoteStopTransaction": ActionSpec(
        "Remote stop", (Field("transactionId", "int"),)
    ),
    "Reset": ActionSpec(
        "Reset", (Field("type", "choice", choices=("Soft", "Hard"), default="Soft"),)
    ),
    "UnlockConnector": ActionSpec("Unlock connector", (_CONNECTOR,)),
    "ChangeAvailability": ActionSpec(
        "Change availability",
        (
            Field("connectorId", "int", default="0", help="0 = whole charger"),
            Field("type", "choice", choices=("Operative", "Inoperative")),
        ),
    ),
    "ChangeConfiguration": ActionSpec(
        "Change configuration", (Field("key"), Field("value"))
    ),
    "GetConfiguration": ActionSpec(
        "Get configuration",
        (Field("key", "json", False, help='JSON list, e.g. ["HeartbeatInterval"]'),),
    ),
    "ClearCache": ActionSpec("Clear cache"),
    "TriggerMessage": ActionSpec(
        "Trigger message",
        (
            Field(
                "requestedMessage",
                "choice",
                choices=(
                    "StatusNotification",
                    "Heartbeat",
                    "BootNotification",
                    "MeterValues",
                    "FirmwareStatusNotification",
                    "DiagnosticsStatusNotification",
                ),
            ),
            _CONNECTOR_OPT,
        ),
        profile="RemoteTrigger",
    ),
    "DataTransfer": ActionSpec(
        "Data transfer",
        (
            Field("vendorId"),
            Field("messageId", required=False),
            Field("data", required=False),
        ),
    ),
    "UpdateFirmware": ActionSpec(
        "Update firmware",
        (
            Field("location", help="URI of the firmware file"),
            Field("retrieveDate", "datetime"),
            Field("retries", "int", False),
            Field("retryInterval", "int", False),
        ),
        profile="FirmwareManagement",
    ),
    "GetDiagnostics": ActionSpec(
        "Get diagnostics",
        (
            Field("location", help="URI to upload to"),
            Field("startTime", "datetime", False),
            Field("stopTime", "datetime", False),
        ),
        profile="FirmwareManagement",
    ),
    "SendLocalList": ActionSpec(
        "Send local list",
        (
            Field("listVersion", "int"),
            Field("updateType", "choice", choices=("Full", "Differential")),
            Field("localAuthorizationList", "json", False),
        ),
        profile="LocalAuthListManagement",
    ),
    "GetLocalListVersion": ActionSpec(
        "Get local list version", profile="LocalAuthListManagement"
    ),
    "ReserveNow": ActionSpec(
        "Reserve now",
        (
            _CONNECTOR,
            Field("expiryDate", "datetime"),
            Field("idTag"),
            Field("reservationId", "int"),
        ),
        profile="Reservation",
    ),
    "CancelReservation": ActionSpec(
        "Cancel reservation", (Field("reservationId", "int"),), profile="Reservation"
    ),
    "SetChargingProfile": ActionSpec(
        "Set charging profile",
        (_CONNECTOR, Field("csChargingProfiles", "json")),
        profile="SmartCharging",
    ),
    "ClearChargingProfile": ActionSpec(
        "Clear charging profile",
        (Field("id", "int", False), _CONNECTOR_OPT),
        profile="SmartCharging",
    ),
    "GetCompositeSchedule": ActionSpec(
        "Get composite schedule",
        (
            _CONNECTOR,
            Field("duration", "int", default="3600"),
            Field("chargingRateUnit", "choice", False, choices=("W", "A")),
        ),
        profile="SmartCharging",
    ),
}


@dataclass
class CommandResult:
    outcome: str
    response: dict | None = None
    error_code: str = ""
    error_description: str = ""
    command_id: int | None = None
    flags: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Answered, and not with a refusal."""
        status = (self.response or {}).get("status")
        return self.outcome == CommandOutcome.ANSWERED and status not in (
            REFUSED_STATUSES
        )

    def describe(self) -> str:
        if self.outcome == CommandOutcome.ANSWERED:
            return f"Answered: {self.response}"
        if self.outcome == CommandOutcome.CALL_ERROR:
            return f"CallError {self.error_code}: {self.error_description}".strip(": ")
        if self.outcome == CommandOutcome.TIMEOUT:
            return "No answer from the charger in time."
        if self.outcome == CommandOutcome.NOT_CONNECTED:
            return "The charger is not connected."
        return f"Invalid: {self.error_description}"


async def command_send_async(
    *,
    charge_point: ChargePoint,
    action: str,
    payload: dict,
    requested_by=None,
    requested_by_api_key=None,
    timeout_s: float | None = None,
) -> CommandResult:
    """Send one OCPP 1.6 command to a charger and return what happened.

    ``requested_by`` is the user who asked, ``requested_by_api_key`` the API
    key of a script; the command is recorded with them.
    """
    timeout_s = timeout_s or settings.OCPP_COMMAND_TIMEOUT_S
    command = await run_db(command_create)(
        charge_point_id=charge_point.pk,
        action=action[:64],
        payload=payload if isinstance(payload, dict) else {"_": payload},
        requested_by_id=getattr(requested_by, "pk", None),
        requested_by_api_key_id=getattr(requested_by_api_key, "pk", None),
    )

    problem = _payload_problem(action, payload)
    if problem:
        result = CommandResult(
            outcome=CommandOutcome.INVALID, error_description=problem
        )
        return await _finish(
            charge_point, action, payload, command.pk, result, None, ""
        )

    connected = await run_db(_is_connected)(charge_point_id=charge_point.pk)
    if not connected:
        result = CommandResult(outcome=CommandOutcome.NOT_CONNECTED)
        return await _finish(
            charge_point, action, payload, command.pk, result, None, ""
        )

    layer = get_channel_layer()
    reply_channel = await layer.new_channel()
    message_id = str(uuid.uuid4())
    started = time.monotonic()
    await layer.group_send(
        charge_point_group(charge_point.pk),
        {
            "type": "ocpp.command",
            "action": action,
            "payload": payload,
            "message_id": message_id,
            "reply_channel": reply_channel,
            "timeout_s": timeout_s,
            # Wall-clock deadline: a command delivered after its caller gave up
            # is dropped, never sent to the charger late.
            "expires_at": time.time() + timeout_s,
        },
    )
    acked = False
    answer = None
    try:
        await asyncio.wait_for(
            layer.receive(reply_channel), settings.OCPP_COMMAND_ACK_TIMEOUT_S
        )
        acked = True
    except TimeoutError:
        if not await run_db(_recently_seen)(charge_point_id=charge_point.pk):
            # Marked connected, silent, and no process holds its socket (a
            # server died without closing it): correct the state, say so now.
            await run_db(charge_point_disconnected)(charge_point_id=charge_point.pk)
            result = CommandResult(outcome=CommandOutcome.NOT_CONNECTED)
            return await _finish(
                charge_point, action, payload, command.pk, result, None, ""
            )
        # Heard from recently: the process holding it is busy (a burst of
        # commands); its confirmation and the answer may still come in time.

    deadline = started + timeout_s + RESULT_MARGIN_S
    while answer is None:
        left = deadline - time.monotonic()
        try:
            message = await asyncio.wait_for(layer.receive(reply_channel), max(left, 0))
        except TimeoutError:
            answer = {
                "outcome": CommandOutcome.TIMEOUT
                if acked
                else CommandOutcome.NOT_CONNECTED
            }
            break
        if message["type"] == "ocpp.command.ack":
            acked = True
        else:
            answer = message
    latency_s = time.monotonic() - started

    result = CommandResult(
        outcome=answer["outcome"],
        response=answer.get("response"),
        error_code=answer.get("error_code", ""),
        error_description=answer.get("error_description", ""),
        flags=answer.get("flags", []),
    )
    return await _finish(
        charge_point, action, payload, command.pk, result, latency_s, message_id
    )


def command_send(
    *,
    charge_point: ChargePoint,
    action: str,
    payload: dict,
    requested_by=None,
    requested_by_api_key=None,
    timeout_s: float | None = None,
) -> CommandResult:
    """Synchronous twin of :func:`command_send_async` (views, admin, API).

    Under the ASGI server a sync view runs in a thread of its own request
    context, and ``async_to_sync`` runs the command on the server's event loop,
    where the charger sockets and the in-memory channel layer live.
    """
    return async_to_sync(command_send_async)(
        charge_point=charge_point,
        action=action,
        payload=payload,
        requested_by=requested_by,
        requested_by_api_key=requested_by_api_key,
        timeout_s=timeout_s,
    )


def _payload_problem(action: str, payload) -> str:
    if action not in ACTIONS:
        return f"{action!r} is not a command the portal sends."
    if not isinstance(payload, dict):
        return "The payload is a JSON object."
    deviations = schema_deviations(action, payload)
    return "; ".join(deviations)


def _is_connected(*, charge_point_id: int) -> bool:
    return ChargePoint.objects.filter(pk=charge_point_id, is_connected=True).exists()


def _recently_seen(*, charge_point_id: int) -> bool:
    """Heard from within a heartbeat interval and a half (plus write slack)."""
    window = timedelta(
        seconds=settings.OCPP_HEARTBEAT_INTERVAL_S * 1.5 + SEEN_WRITE_INTERVAL_S
    )
    return ChargePoint.objects.filter(
        pk=charge_point_id, last_seen_at__gte=timezone.now() - window
    ).exists()


async def _finish(
    charge_point: ChargePoint,
    action: str,
    payload,
    command_id: int,
    result: CommandResult,
    latency_s: float | None,
    message_id: str,
) -> CommandResult:
    result.command_id = command_id
    await run_db(command_finish)(
        command_id=command_id,
        outcome=result.outcome,
        response=result.response,
        error_code=result.error_code,
        error_description=result.error_description,
        message_id=message_id,
        latency_ms=None if latency_s is None else round(latency_s * 1000),
    )
    label = action if action in ACTIONS else "-"
    COMMANDS.labels(action=label, outcome=result.outcome).inc()
    if latency_s is not None and result.outcome != CommandOutcome.TIMEOUT:
        COMMAND_LATENCY.labels(action=label).observe(latency_s)
    await run_db(_alert_update)(charge_point=charge_point, action=action, result=result)
    if result.outcome == CommandOutcome.CALL_ERROR:
        await run_db(charge_point_capability_record)(
            charge_point_id=charge_point.pk,
            key=_capability_key(action, payload),
            value=f"unsupported ({result.error_code or 'CallError'})",
        )
    logger.info(
        "Command %s to charger: %s",
        action,
        result.outcome,
        extra={"charge_point": charge_point.identity, "command": command_id},
    )
    return result


def _capability_key(action: str, payload) -> str:
    """E.g. 'GetConfiguration(SupportedFeatureProfiles)' for FC-28."""
    if (
        action == "GetConfiguration"
        and isinstance(payload, dict)
        and payload.get("key")
    ):
        return f"{action}({','.join(str(k) for k in payload['key'])})"
    return action


def _alert_update(
    *, charge_point: ChargePoint, action: str, result: CommandResult
) -> None:
    """A failed command opens an alert; the next success of it resolves it."""
    if result.outcome in (CommandOutcome.INVALID, CommandOutcome.NOT_CONNECTED):
        return
    subject = f"{charge_point.identity}:{action}"
    if result.ok:
        alert_resolve(kind=AlertKind.COMMAND_FAILED, subject=subject)
        return
    alert_open(
        kind=AlertKind.COMMAND_FAILED,
        subject=subject,
        message=result.describe()[:1000],
        site=charge_point.site,
        charge_point=charge_point,
    )
