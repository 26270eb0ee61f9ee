"""WebSocket consumers: one per connected charger, and the live-page feed.

A charger's frames are handled one at a time, in order, by a task of their
own, so the consumer stays free to take remote commands from the channel
layer while a slow write is under way; a CALL to the charger runs as a task
too and waits for its answer, which arrives through the same frame queue.
"""

import asyncio
import json
import logging
import os
import socket
import time
import uuid
import weakref
from typing import Any

from channels.consumer import get_handler_name
from channels.generic.websocket import (
    AsyncJsonWebsocketConsumer,
    AsyncWebsocketConsumer,
)
from channels.layers import get_channel_layer
from django.core.cache import cache
from django.utils import timezone
from ocpp.v16.enums import Action

from giu_ev.metrics import CALL_ERRORS, FRAMES
from ocpp_bridge.auth import Handshake
from ocpp_bridge.db import run_db
from ocpp_bridge.models import Direction
from ocpp_bridge.parsing import ERROR_CODE_SPELLING_16, frame_parse, schema_deviations
from ocpp_bridge.services import (
    FramesNotStored,
    FrameWrite,
    frame_build,
    frame_record,
)
from ocpp_bridge.v16 import CentralSystem16, Inbound
from ocpp_bridge.writer import frame_writer
from stations import services as stations

logger = logging.getLogger(__name__)

LIVE_GROUP = "live"
# Meter-value events reach live pages at most once a second per charger and
# connector, the newest one, sent with all others of the process in one
# channel-layer message: a page shows a session's energy, not every sample, and
# a group send per frame cost a Redis round trip per MeterValues (7% of the
# process's CPU at 25 frames a second, more under load).
LIVE_COALESCED_EVENTS = frozenset({"meter_values"})
LIVE_COALESCE_S = 1.0
# Events per channel-layer message (a few hundred bytes each).
LIVE_EVENTS_PER_MESSAGE = 500
# last_seen_at is written at most this often per socket (besides Boot and
# Heartbeat, which always write): offline detection works in heartbeat
# intervals (minutes), and a write per MeterValues frame would double the load.
SEEN_WRITE_INTERVAL_S = 30
# Metric labels come from fixed sets; anything else a charger sends is "other".
_ACTIONS = frozenset(action.value for action in Action)
_ERROR_CODES = frozenset(
    {
        "NotImplemented",
        "NotSupported",
        "InternalError",
        "ProtocolError",
        "SecurityError",
        "FormationViolation",
        "PropertyConstraintViolation",
        "OccurenceConstraintViolation",
        "TypeConstraintViolation",
        "GenericError",
    }
)


def _action_label(action: str) -> str:
    return action if action in _ACTIONS else ("-" if not action else "other")


_frame_counters: dict[tuple[str, str], Any] = {}


def _frames_counter(direction: str, action: str):
    """The FRAMES child of a direction and action (labels() takes a lock).

    Keyed by label, so a charger's made-up actions add no entries.
    """
    key = (direction, _action_label(action))
    counter = _frame_counters.get(key)
    if counter is None:
        counter = _frame_counters[key] = FRAMES.labels(
            direction=direction, action=key[1]
        )
    return counter


def _code_label(code: str) -> str:
    return code if code in _ERROR_CODES else "other"


# Close code for a socket replaced by a newer connection of the same charger
# (4000-4999 are left to applications by RFC 6455).
CLOSE_REPLACED = 4000
# How long a closed socket's last frames may take to be stored.
DRAIN_ON_CLOSE_S = 10
PROCESS = f"{socket.gethostname()}:{os.getpid()}"


def charge_point_group(charge_point_id: int) -> str:
    return f"ocpp.cp.{charge_point_id}"


def _owner_key(charge_point_id: int) -> str:
    return f"ocpp:owner:{charge_point_id}"


class _LiveBatch:
    """The coalesced live events of one event loop (one process under Daphne)."""

    def __init__(self) -> None:
        self.events: dict[tuple, dict] = {}
        self.sending: set[asyncio.Task] = set()
        self.flush_at: asyncio.TimerHandle | None = None

    def add(self, event: dict) -> None:
        key = (event.get("charge_point"), event.get("event"), event.get("connector"))
        self.events[key] = event
        if self.flush_at is None:
            self.flush_at = asyncio.get_running_loop().call_later(
                LIVE_COALESCE_S, self.flush
            )

    def flush(self) -> None:
        self.flush_at = None
        events, self.events = list(self.events.values()), {}
        for start in range(0, len(events), LIVE_EVENTS_PER_MESSAGE):
            task = asyncio.create_task(
                self._send(events[start : start + LIVE_EVENTS_PER_MESSAGE])
            )
            self.sending.add(task)
            task.add_done_callback(self.sending.discard)

    async def _send(self, events: list[dict]) -> None:
        try:
            await get_channel_layer().group_send(
                LIVE_GROUP, {"type": "live.events", "events": events}
            )
        except Exception:
            # Live pages miss one second of meter values; nothing is lost.
            logger.warning("Live meter-value events not sent", exc_info=True)


_live_batches: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LiveBatch]" = (
    weakref.WeakKeyDictionary()
)


def _live_batch() -> _LiveBatch:
    loop = asyncio.get_running_loop()
    batch = _live_batches.get(loop)
    if batch is None:
        batch = _live_batches[loop] = _LiveBatch()
    return batch


class _Wire:
    """The connection object the ocpp package writes to: logs, then sends."""

    def __init__(self, consumer: "ChargePointConsumer"):
        self.consumer = consumer

    async def send(self, text: str) -> None:
        await self.consumer.frame_out(text)

    async def recv(self) -> str:  # pragma: no cover - frames are pushed, not pulled
        raise RuntimeError("The consumer feeds frames with route_message().")


class ChargePointConsumer(AsyncWebsocketConsumer):
    """One charger's socket at /ocpp/<identity>, driven by CentralSystem16."""

    async def websocket_connect(self, message):
        decision: Handshake = self.scope["ocpp"]
        self.identity = decision.identity
        self.charge_point_id = decision.charge_point_id
        self.group = charge_point_group(self.charge_point_id)
        self.replaced = False
        self.closed = False
        self.frames: asyncio.Queue[str | None] = asyncio.Queue()
        self.tasks: set[asyncio.Task] = set()
        self.cp = CentralSystem16(
            self.identity,
            _Wire(self),
            charge_point_id=self.charge_point_id,
            time_zone=decision.site_time_zone,
            publish=self.publish,
        )

        # Tell an older socket of this charger (in any process) to step down
        # before joining the group, so commands reach only this one.
        await self.channel_layer.group_send(
            self.group, {"type": "ocpp.replace", "channel": self.channel_name}
        )
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept(subprotocol=decision.subprotocol)

        now = timezone.now()
        self.seen_written_at = now
        await run_db(stations.charge_point_connected)(
            charge_point_id=self.charge_point_id,
            at=now,
            warning=""
            if decision.subprotocol
            else "no_subprotocol: accepted as ocpp1.6 without the header",
        )
        await cache.aset(_owner_key(self.charge_point_id), self.channel_name, None)
        if decision.subprotocol is None:
            await run_db(frame_record)(
                charge_point_id=self.charge_point_id,
                identity=self.identity,
                direction=Direction.IN,
                raw="",
                flags=["no_subprotocol"],
                at=now,
            )
        self.worker = asyncio.create_task(self._drain())
        await self.publish({"charge_point": self.identity, "event": "connected"})

    async def dispatch(self, message):
        """Hand one ASGI or channel-layer message to its handler.

        Channels first closes stale database connections for every message
        (``aclose_old_connections``, a trip to a worker thread); this consumer
        never uses the database on the event loop (services run through
        ``run_db`` and the frame writer, which close them around their own
        work), and that trip per frame was a quarter of the process's CPU at
        25 MeterValues a second (py-spy, docs/ocpp-testing.md).
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def websocket_disconnect(self, message):
        self.closed = True
        if not hasattr(self, "worker"):  # the connect step itself failed
            await super().websocket_disconnect(message)
            return
        await self.channel_layer.group_discard(self.group, self.channel_name)
        for task in list(self.tasks):
            task.cancel()
        # Frames that arrived just before the close (a StopTransaction sent
        # right before a Reset) are still stored; their answers go nowhere and
        # the charger resends them, which the services take as repeats.
        self.frames.put_nowait(None)
        try:
            await asyncio.wait_for(self.worker, DRAIN_ON_CLOSE_S)
        except TimeoutError:
            logger.warning(
                "Frames left unstored at disconnect",
                extra={"charge_point": self.identity},
            )
        owner = await cache.aget(_owner_key(self.charge_point_id))
        if not self.replaced and owner in (None, self.channel_name):
            await run_db(stations.charge_point_disconnected)(
                charge_point_id=self.charge_point_id
            )
            await cache.adelete(_owner_key(self.charge_point_id))
            await self.publish({"charge_point": self.identity, "event": "disconnected"})
        await super().websocket_disconnect(message)

    async def receive(self, text_data=None, bytes_data=None):
        if text_data is None:
            # OCPP-J uses text frames only; a binary one is read as UTF-8.
            text_data = bytes_data.decode("utf-8", "replace") if bytes_data else ""
        self.frames.put_nowait(text_data)

    # --- channel layer --------------------------------------------------------

    async def ocpp_replace(self, event):
        if event["channel"] == self.channel_name:
            return
        self.replaced = True
        logger.info(
            "Charger connected again; closing the older socket",
            extra={"charge_point": self.identity},
        )
        await self.close(code=CLOSE_REPLACED)

    async def ocpp_command(self, event):
        """A remote command for this charger: confirm it, then run it."""
        if self.replaced or time.time() > event.get("expires_at", float("inf")):
            return
        await self.channel_layer.send(
            event["reply_channel"],
            {"type": "ocpp.command.ack", "process": PROCESS},
        )
        task = asyncio.create_task(self._run_command(event))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run_command(self, event):
        result = await self.cp.call_raw(
            action=event["action"],
            payload=event["payload"],
            unique_id=event.get("message_id") or str(uuid.uuid4()),
            timeout_s=min(
                event["timeout_s"],
                event.get("expires_at", float("inf")) - time.time(),
            ),
        )
        await self.channel_layer.send(
            event["reply_channel"], {"type": "ocpp.command.result", **result}
        )

    async def publish(self, event: dict) -> None:
        if event.get("event") in LIVE_COALESCED_EVENTS:
            _live_batch().add(event)
            return
        await self.channel_layer.group_send(
            LIVE_GROUP, {"type": "live.event", "event": event}
        )

    # --- frames ---------------------------------------------------------------

    async def _drain(self) -> None:
        while True:
            text = await self.frames.get()
            if text is None:
                return
            try:
                await self.frame_in(text)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Never let one frame take the charger's socket down.
                logger.exception(
                    "Frame handling failed", extra={"charge_point": self.identity}
                )

    async def frame_in(self, text: str) -> None:
        """Store a frame, then handle it; answers go out only after storing.

        A MeterValues frame is stored by its handler instead, in one write with
        its data and its answer (CentralSystem16.STORED_WITH_ANSWER).
        """
        now = timezone.now()
        parsed = frame_parse(text)
        action = parsed.action
        if parsed.message_type in (3, 4) and not parsed.error_code:
            action = self.cp.pending_actions.get(parsed.message_id, "")
        flags = list(parsed.flags)
        if parsed.message_type == 2 and not parsed.error_code:
            flags += schema_deviations(parsed.action, parsed.payload)

        seen_at = None
        if (now - self.seen_written_at).total_seconds() >= SEEN_WRITE_INTERVAL_S:
            self.seen_written_at = seen_at = now
        write = FrameWrite(
            charge_point_id=self.charge_point_id,
            frames=[
                frame_build(
                    charge_point_id=self.charge_point_id,
                    identity=self.identity,
                    direction=Direction.IN,
                    raw=text,
                    message_type=parsed.message_type,
                    message_id=parsed.message_id_text,
                    action=action,
                    payload=parsed.payload,
                    error_code=parsed.error_code_received,
                    flags=flags,
                    at=now,
                )
            ],
            seen_at=seen_at,
            flags=flags if flags and parsed.message_type == 2 else [],
        )
        deferred = (
            parsed.message_type == 2
            and not parsed.error_code
            and parsed.action in self.cp.STORED_WITH_ANSWER
        )
        if not deferred:
            await frame_writer().store(write)
        _frames_counter("in", action).inc()

        if parsed.error_code:
            if parsed.message_type not in (3, 4):
                await self.send_call_error(
                    parsed.readable_message_id,
                    parsed.error_code,
                    parsed.error_description,
                )
            return
        if parsed.message_type == 4:
            CALL_ERRORS.labels(
                direction="received", code=_code_label(parsed.error_code_received)
            ).inc()
        if (
            parsed.message_type in (3, 4)
            and parsed.message_id not in self.cp.pending_actions
        ):
            # Late (after its command timed out) or for an id never sent. It is
            # stored above; handed to the package it would wait in the answer
            # queue and be logged as an error when the next command runs.
            logger.warning(
                "Answer %s from the charger has no call waiting for it; stored only",
                parsed.message_id_text[:36],
                extra={"charge_point": self.identity},
            )
            return

        if parsed.message_type == 2:
            self.cp.inbound[parsed.message_id] = Inbound(
                payload=parsed.payload,
                received_at=now,
                flags=flags,
                write=write if deferred else None,
            )
            self.cp.answering[parsed.message_id] = parsed.action
        try:
            if parsed.message_type == 2:
                await self.cp.route_call(
                    text, parsed.message_id, parsed.action, parsed.payload
                )
            else:
                await self.cp.route_message(text)
        except Exception:
            logger.exception(
                "OCPP routing failed", extra={"charge_point": self.identity}
            )
            if parsed.message_type == 2:
                await self.send_call_error(
                    parsed.message_id, "InternalError", "The frame was stored."
                )
        finally:
            inbound = self.cp.inbound.pop(parsed.message_id, None)
            self.cp.prestored.pop(parsed.message_id, None)
        if inbound is not None and inbound.write is not None:
            # Neither the handler nor an answer took the frame (nothing was
            # sent): it is stored all the same.
            await frame_writer().store(inbound.write)

    async def send_call_error(self, message_id, code: str, description: str) -> None:
        await self.frame_out(
            json.dumps([4, message_id, code, description, {}], separators=(",", ":"))
        )

    async def frame_out(self, text: str) -> None:
        """Store an outgoing frame, then write it to the socket."""
        parsed = frame_parse(text)
        if parsed.message_type == 4:
            code = ERROR_CODE_SPELLING_16.get(
                parsed.error_code_received, parsed.error_code_received
            )
            if code != parsed.error_code_received:
                details = parsed.payload if isinstance(parsed.payload, dict) else {}
                text = json.dumps(
                    [4, parsed.message_id, code, parsed.error_description, details],
                    separators=(",", ":"),
                )
            parsed.error_code_received = code
            CALL_ERRORS.labels(direction="sent", code=_code_label(code)).inc()
        if parsed.message_type == 2:
            action = parsed.action
        else:
            action = self.cp.answering.pop(parsed.message_id, "")

        if self.cp.prestored.pop(parsed.message_id, None) != text:
            out = frame_build(
                charge_point_id=self.charge_point_id,
                identity=self.identity,
                direction=Direction.OUT,
                raw=text,
                message_type=parsed.message_type,
                message_id=parsed.message_id_text,
                action=action,
                payload=parsed.payload,
                error_code=parsed.error_code_received,
            )
            pending = (
                self.cp.inbound.get(parsed.message_id)
                if parsed.message_type in (3, 4)
                else None
            )
            if pending is not None and pending.write is not None:
                # The frame this answers is not stored yet (its handler failed
                # before storing it): both go in one write, before sending.
                write = pending.write
                write.frames.append(out)
                try:
                    await frame_writer().store(write)
                except FramesNotStored:
                    write.frames.remove(out)
                    raise
                pending.write = None
            else:
                await frame_writer().store(
                    FrameWrite(charge_point_id=self.charge_point_id, frames=[out])
                )
        _frames_counter("out", action).inc()
        if not self.closed:
            await self.send(text_data=text)


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """Forwards live events (status, sessions, connections) to operator pages."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        await self.channel_layer.group_add(LIVE_GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(LIVE_GROUP, self.channel_name)

    async def live_event(self, event):
        await self.send_json(event["event"])

    async def live_events(self, message):
        """Coalesced meter-value events: one WebSocket message each, as above."""
        for event in message["events"]:
            await self.send_json(event)
