"""OCPP 1.6J: one handler per action a charger sends, and the raw CALL out.

Each handler reads the payload tolerantly (ocpp_bridge.parsing), calls one
``stations`` or ``sessions`` service off the event loop, and returns the
answer. The answer is sent only after the service returned, so nothing is
acknowledged that is not stored. Schema validation by the ocpp package is
skipped on every route: deviations are found beforehand by the consumer,
flagged and stored, and only an unreadable frame gets a CallError.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.utils import timezone
from ocpp.charge_point import LOGGER as PACKAGE_LOGGER
from ocpp.charge_point import remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.messages import Call, CallResult, MessageType
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.datatypes import IdTagInfo
from ocpp.v16.enums import Action, ChargePointErrorCode

from ocpp_bridge.db import run_db
from ocpp_bridge.models import Direction
from ocpp_bridge.package_log import PackageLog
from ocpp_bridge.parsing import (
    as_int,
    as_text,
    charger_time,
    meter_samples_read,
    need,
    schema_deviations,
    utc_z,
)
from ocpp_bridge.services import FramesNotStored, FrameWrite, frame_build
from ocpp_bridge.writer import frame_writer
from sessions import services as sessions
from stations import services as stations

logger = logging.getLogger(__name__)

_ERROR_CODES = frozenset(code.value for code in ChargePointErrorCode)


@dataclass
class Inbound:
    """What the consumer knows of the CALL being handled.

    ``write`` holds the frame itself while it is not yet stored: the handler
    of an action in ``CentralSystem16.STORED_WITH_ANSWER`` stores it together
    with its data and answer; failing that, it goes with whatever answer is
    sent (the consumer's ``frame_out``).
    """

    payload: dict
    received_at: datetime
    flags: list[str] = field(default_factory=list)
    write: FrameWrite | None = None


def _id_tag_info(authorization: sessions.Authorization | None) -> IdTagInfo | None:
    if authorization is None:
        return None
    return IdTagInfo(
        status=authorization.status,
        expiry_date=utc_z(authorization.expiry_date)
        if authorization.expiry_date
        else None,
        parent_id_tag=authorization.parent_id_tag or None,
    )


class CentralSystem16(ChargePoint):
    """The portal's side of one charger's OCPP 1.6J connection."""

    # Actions whose handler stores the frame received, its data and its
    # answer in one write: the frames that come by the thousand.
    STORED_WITH_ANSWER = frozenset({Action.meter_values.value})

    def __init__(
        self,
        identity: str,
        connection,
        *,
        charge_point_id: int,
        time_zone: str,
        publish: Callable[[dict], Awaitable[None]] | None = None,
    ):
        super().__init__(
            identity,
            connection,
            logger=PackageLog(PACKAGE_LOGGER, charge_point=identity),
        )
        self.charge_point_id = charge_point_id
        self.tz = ZoneInfo(time_zone)
        self.inbound: dict[Any, Inbound] = {}
        # Action of each CALL in flight, by message id, for the frame log:
        # ours waiting for an answer, and the charger's being answered.
        self.pending_actions: dict[str, str] = {}
        self.answering: dict[Any, str] = {}
        # Answers already in the frame log (stored with their data), by id.
        self.prestored: dict[Any, str] = {}
        self._publish = publish

    # --- helpers --------------------------------------------------------------

    def _take(self, unique_id: Any) -> Inbound:
        return self.inbound.get(unique_id) or Inbound(
            payload={}, received_at=timezone.now()
        )

    async def publish(self, event: dict) -> None:
        if self._publish is not None:
            await self._publish({"charge_point": self.id, **event})

    def _time(self, raw: Any, now: datetime):
        return charger_time(raw, tz=self.tz, now=now)

    async def route_call(
        self, raw_msg: str, unique_id: Any, action: str, payload: dict
    ) -> None:
        """Answer a CALL of the charger through its handler.

        What the package's ``route_message`` does for a CALL, without the work
        our handlers do not use: a second JSON parse, a snake_case copy of the
        payload and an ``inspect.signature`` per call, a tenth of the bridge's
        CPU at 500 MeterValues a second (py-spy). A CALL with no handler here
        goes through the package, which names its CallError.
        """
        handler = self.route_map.get(action, {}).get("_on_action")
        if handler is None:
            await self.route_message(raw_msg)
            return
        call = Call(unique_id, action, payload)
        try:
            response = await handler(call_unique_id=unique_id)
        except Exception as error:
            # As the package does: PackageLog makes a refusal one WARNING
            # line, a fault of ours an ERROR with its traceback.
            self.logger.exception("Error while handling request '%s'", call)
            await self._send(call.create_call_error(error).to_json())
            return
        answer = snake_to_camel_case(remove_nones(serialize_as_dict(response)))
        await self._send(call.create_call_result(answer).to_json())

    async def _store_answered(
        self,
        call_unique_id: Any,
        msg: Inbound,
        *,
        answer: dict,
        meter_values: sessions.MeterValuesReport | None = None,
    ) -> None:
        """Store the frame received, its data and its answer in one write.

        The answer (the CallResult the package is about to send for the
        payload ``answer``) is then sent without another write. If the write
        fails, the error is raised (InternalError for the charger) and the
        frame received, when it could not be stored either, stays pending.
        """
        text = CallResult(call_unique_id, answer).to_json()
        write = msg.write or FrameWrite(charge_point_id=self.charge_point_id, frames=[])
        write.meter_values = meter_values
        write.answer = frame_build(
            charge_point_id=self.charge_point_id,
            identity=self.id,
            direction=Direction.OUT,
            raw=text,
            message_type=MessageType.CallResult,
            message_id=str(call_unique_id)[:64],
            action=self.answering.get(call_unique_id, ""),
            payload=answer,
        )
        msg.write = None
        try:
            await frame_writer().store(write)
        except FramesNotStored:
            write.meter_values = write.answer = None
            msg.write = write
            raise
        self.prestored[call_unique_id] = text

    # --- Core profile ---------------------------------------------------------

    @on(Action.boot_notification, skip_schema_validation=True)
    async def on_boot_notification(self, call_unique_id, **_):
        msg = self._take(call_unique_id)
        p = msg.payload
        need(p, "chargePointVendor")
        need(p, "chargePointModel")

        decision = await run_db(stations.charge_point_boot)(
            charge_point_id=self.charge_point_id,
            vendor=as_text(p.get("chargePointVendor"))[:255],
            model=as_text(p.get("chargePointModel"))[:255],
            serial_number=as_text(p.get("chargePointSerialNumber"))[:255],
            charge_box_serial_number=as_text(p.get("chargeBoxSerialNumber"))[:255],
            firmware_version=as_text(p.get("firmwareVersion"))[:255],
            boot_info=p,
            at=msg.received_at,
        )
        await self.publish({"event": "boot", "status": decision.status})
        return call_result.BootNotification(
            current_time=utc_z(timezone.now()),
            interval=decision.interval_s,
            status=decision.status,
        )

    @on(Action.heartbeat, skip_schema_validation=True)
    async def on_heartbeat(self, call_unique_id, **_):
        msg = self._take(call_unique_id)
        await run_db(stations.charge_point_heartbeat)(
            charge_point_id=self.charge_point_id, at=msg.received_at
        )
        return call_result.Heartbeat(current_time=utc_z(timezone.now()))

    @on(Action.status_notification, skip_schema_validation=True)
    async def on_status_notification(self, call_unique_id, **_):
        msg = self._take(call_unique_id)
        p = msg.payload
        connector_number = as_int(need(p, "connectorId"), "connectorId", minimum=0)
        status = as_text(need(p, "status"))
        error_code = as_text(p.get("errorCode")) or "NoError"
        flags = list(msg.flags)
        error_code_raw = ""
        if error_code not in _ERROR_CODES:
            # FC-22: "Error" from a Legrand unit. Keep the fault, map the code.
            error_code_raw, error_code = error_code, "OtherError"
            flags.append("error_code_not_in_enum")
        stamp = self._time(p.get("timestamp"), msg.received_at)
        if p.get("timestamp") is None:
            stamp_flags: tuple[str, ...] = ()  # optional in 1.6: no deviation
        else:
            stamp_flags = stamp.flags

        await run_db(stations.status_record)(
            charge_point_id=self.charge_point_id,
            connector_number=connector_number,
            status=status,
            error_code=error_code,
            error_code_raw=error_code_raw,
            info=as_text(p.get("info")),
            vendor_id=as_text(p.get("vendorId")),
            vendor_error_code=as_text(p.get("vendorErrorCode")),
            timestamp=stamp.value,
            raw_timestamp=stamp.raw,
            timestamp_zone_assumed=stamp.zone_assumed,
            flags=[*flags, *stamp_flags],
        )
        await self.publish(
            {
                "event": "status",
                "connector": connector_number,
                "status": status,
                "error_code": error_code,
            }
        )
        return call_result.StatusNotification()

    @on(Action.authorize, skip_schema_validation=True)
    async def on_authorize(self, call_unique_id, **_):
        msg = self._take(call_unique_id)
        id_tag = as_text(need(msg.payload, "idTag"))
        authorization = await run_db(sessions.id_token_authorize)(id_tag=id_tag)
        return call_result.Authorize(id_tag_info=_id_tag_info(authorization))

    @on(Action.start_transaction, skip_schema_validation=True)
    async def on_start_transaction(self, call_unique_id, **_):
        msg = self._take(call_unique_id)
        p = msg.payload
        connector_number = as_int(need(p, "connectorId"), "connectorId", minimum=0)
        id_tag = as_text(need(p, "idTag"))
        meter_start = as_int(need(p, "meterStart"), "meterStart")
        reservation = p.get("reservationId")
        stamp = self._time(p.get("timestamp"), msg.received_at)

        started = await run_db(sessions.session_start)(
            charge_point_id=self.charge_point_id,
            connector_number=connector_number,
            id_tag=id_tag,
            meter_start_wh=meter_start,
            started_at=stamp.value,
            raw_timestamp=stamp.raw,
            timestamp_zone_assumed=stamp.zone_assumed,
            reservation_id=as_int(reservation, "reservationId")
            if reservation is not None
            else None,
            flags=[*msg.flags, *stamp.flags],
            message_id=str(call_unique_id),
            payload=p,
        )
        await self.publish(
            {
                "event": "session_started",
                "connector": connector_number,
                "session": started.session_id,
            }
        )
        return call_result.StartTransaction(
            transaction_id=started.session_id,
            id_tag_info=_id_tag_info(started.authorization),
        )

    @on(Action.stop_transaction, skip_schema_validation=True)
    async def on_stop_transaction(self, call_unique_id, **_):
        msg = self._take(call_unique_id)
        p = msg.payload
        transaction_ref = as_int(need(p, "transactionId"), "transactionId")
        meter_stop = as_int(need(p, "meterStop"), "meterStop")
        stamp = self._time(p.get("timestamp"), msg.received_at)
        samples, sample_flags = meter_samples_read(
            p.get("transactionData"), tz=self.tz, now=msg.received_at
        )

        stopped = await run_db(sessions.session_stop)(
            charge_point_id=self.charge_point_id,
            transaction_ref=transaction_ref,
            meter_stop_wh=meter_stop,
            stopped_at=stamp.value,
            raw_timestamp=stamp.raw,
            timestamp_zone_assumed=stamp.zone_assumed,
            reason=as_text(p.get("reason")),
            id_tag=as_text(p.get("idTag")),
            samples=samples,
            flags=[*msg.flags, *stamp.flags, *sample_flags],
            message_id=str(call_unique_id),
            payload=p,
        )
        await self.publish(
            {
                "event": "session_stopped",
                "session": stopped.session_id,
                "energy_wh": stopped.energy_wh,
            }
        )
        return call_result.StopTransaction(
            id_tag_info=_id_tag_info(stopped.authorization)
        )

    @on(Action.meter_values, skip_schema_validation=True)
    async def on_meter_values(self, call_unique_id, **_):
        msg = self._take(call_unique_id)
        p = msg.payload
        connector_number = as_int(need(p, "connectorId"), "connectorId", minimum=0)
        transaction = p.get("transactionId")
        transaction_ref = (
            as_int(transaction, "transactionId") if transaction is not None else None
        )
        samples, _ = meter_samples_read(
            need(p, "meterValue"), tz=self.tz, now=msg.received_at
        )
        report = None
        if samples:
            report = sessions.MeterValuesReport(
                charge_point_id=self.charge_point_id,
                connector_number=connector_number,
                transaction_ref=transaction_ref,
                samples=samples,
                message_id=str(call_unique_id),
                payload=p,
            )

        await self._store_answered(call_unique_id, msg, answer={}, meter_values=report)
        if samples:
            await self.publish(
                {
                    "event": "meter_values",
                    "connector": connector_number,
                    "session": transaction_ref,
                }
            )
        return call_result.MeterValues()

    @on(Action.data_transfer, skip_schema_validation=True)
    async def on_data_transfer(self, call_unique_id, **_):
        msg = self._take(call_unique_id)
        need(msg.payload, "vendorId")
        # The portal implements no vendor extension; the data is kept in the
        # frame log and the charger told so, as §4.3 provides.
        return call_result.DataTransfer(status="UnknownVendorId")

    # --- Firmware Management --------------------------------------------------

    async def _progress(self, kind: str, call_unique_id) -> None:
        msg = self._take(call_unique_id)
        status = as_text(need(msg.payload, "status"))
        await run_db(stations.charge_point_firmware_status_record)(
            charge_point_id=self.charge_point_id,
            kind=kind,
            status=status,
            at=msg.received_at,
        )
        await self.publish({"event": kind, "status": status})

    @on(Action.diagnostics_status_notification, skip_schema_validation=True)
    async def on_diagnostics_status(self, call_unique_id, **_):
        await self._progress("diagnostics", call_unique_id)
        return call_result.DiagnosticsStatusNotification()

    @on(Action.firmware_status_notification, skip_schema_validation=True)
    async def on_firmware_status(self, call_unique_id, **_):
        await self._progress("firmware", call_unique_id)
        return call_result.FirmwareStatusNotification()

    # --- Security Extensions (the messages a charger sends) -------------------

    @on(Action.security_event_notification, skip_schema_validation=True)
    async def on_security_event(self, call_unique_id, **_):
        msg = self._take(call_unique_id)
        need(msg.payload, "type")
        logger.warning(
            "Security event from charger: %s",
            as_text(msg.payload.get("type"))[:64],
            extra={"charge_point": self.id},
        )
        return call_result.SecurityEventNotification()

    @on(Action.log_status_notification, skip_schema_validation=True)
    async def on_log_status(self, call_unique_id, **_):
        await self._progress("log", call_unique_id)
        return call_result.LogStatusNotification()

    @on(Action.signed_firmware_status_notification, skip_schema_validation=True)
    async def on_signed_firmware_status(self, call_unique_id, **_):
        await self._progress("signed_firmware", call_unique_id)
        return call_result.SignedFirmwareStatusNotification()

    @on(Action.sign_certificate, skip_schema_validation=True)
    async def on_sign_certificate(self, call_unique_id, **_):
        need(self._take(call_unique_id).payload, "csr")
        # Profile 3 (client certificates) needs a CA the portal does not run;
        # the charger is told so and keeps its current certificate.
        return call_result.SignCertificate(status="Rejected")

    # --- Calls to the charger -------------------------------------------------

    async def call_raw(
        self, *, action: str, payload: dict, unique_id: str, timeout_s: float
    ) -> dict:
        """Send a CALL and wait for its answer, one outstanding CALL at a time.

        Uses the package's call lock and response queue but keeps the answer
        as the charger's JSON: the package's ``call`` rebuilds a dataclass and
        fails on an extra field a charger adds. Returns a dict with
        ``outcome`` (answered, call_error, timeout) and the details.
        """
        message = Call(unique_id=unique_id, action=action, payload=payload)
        started = asyncio.get_running_loop().time()
        try:
            async with asyncio.timeout(timeout_s):
                async with self._call_lock:
                    self.pending_actions[unique_id] = action
                    await self._send(message.to_json())
                    left = timeout_s - (asyncio.get_running_loop().time() - started)
                    response = await self._get_specific_response(
                        unique_id, max(left, 0.01)
                    )
        except TimeoutError:
            return {"outcome": "timeout"}
        finally:
            latency_s = asyncio.get_running_loop().time() - started
            self.pending_actions.pop(unique_id, None)

        if response.message_type_id == MessageType.CallError:
            return {
                "outcome": "call_error",
                "error_code": str(response.error_code or ""),
                "error_description": str(response.error_description or ""),
                "latency_s": latency_s,
            }
        return {
            "outcome": "answered",
            "response": response.payload,
            "flags": schema_deviations(
                action, response.payload, message_type=MessageType.CallResult
            ),
            "latency_s": latency_s,
        }
