"""Remote commands: every action's round trip, CallError, timeout, not connected."""

import asyncio
import logging
import time

import pytest
from channels.db import database_sync_to_async as db

from giu_ev.metrics import COMMANDS
from ocpp_bridge.commands import ACTIONS, command_send, command_send_async
from ocpp_bridge.models import Frame, RemoteCommand
from stations.models import Alert, AlertKind, ChargePoint
from tests.ocpp_bridge.conftest import answer_next

PROFILE = {
    "chargingProfileId": 7,
    "stackLevel": 0,
    "chargingProfilePurpose": "TxDefaultProfile",
    "chargingProfileKind": "Absolute",
    "chargingSchedule": {
        "chargingRateUnit": "W",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7400.0}],
    },
}

# action -> (payload sent, answer of the test charger)
ROUND_TRIPS = {
    "RemoteStartTransaction": (
        {"idTag": "TAG-1", "connectorId": 1},
        {"status": "Accepted"},
    ),
    "RemoteStopTransaction": ({"transactionId": 12}, {"status": "Accepted"}),
    "Reset": ({"type": "Soft"}, {"status": "Accepted"}),
    "UnlockConnector": ({"connectorId": 1}, {"status": "Unlocked"}),
    "ChangeAvailability": (
        {"connectorId": 0, "type": "Inoperative"},
        {"status": "Scheduled"},
    ),
    "ChangeConfiguration": (
        {"key": "HeartbeatInterval", "value": "120"},
        {"status": "Accepted"},
    ),
    "GetConfiguration": (
        {"key": ["HeartbeatInterval"]},
        {
            "configurationKey": [
                {"key": "HeartbeatInterval", "readonly": False, "value": "120"}
            ]
        },
    ),
    "ClearCache": ({}, {"status": "Accepted"}),
    "TriggerMessage": (
        {"requestedMessage": "StatusNotification", "connectorId": 1},
        {"status": "Accepted"},
    ),
    "DataTransfer": (
        {"vendorId": "com.acme", "messageId": "ping", "data": "1"},
        {"status": "Accepted", "data": "pong"},
    ),
    "UpdateFirmware": (
        {
            "location": "https://fw.example/fw.bin",
            "retrieveDate": "2026-01-01T00:00:00.000Z",
        },
        {},
    ),
    "GetDiagnostics": ({"location": "ftp://logs.example/"}, {"fileName": "diag.zip"}),
    "SendLocalList": (
        {
            "listVersion": 3,
            "updateType": "Full",
            "localAuthorizationList": [
                {"idTag": "TAG-1", "idTagInfo": {"status": "Accepted"}}
            ],
        },
        {"status": "Accepted"},
    ),
    "GetLocalListVersion": ({}, {"listVersion": 3}),
    "ReserveNow": (
        {
            "connectorId": 1,
            "expiryDate": "2026-01-01T10:00:00.000Z",
            "idTag": "TAG-1",
            "reservationId": 5,
        },
        {"status": "Accepted"},
    ),
    "CancelReservation": ({"reservationId": 5}, {"status": "Accepted"}),
    "SetChargingProfile": (
        {"connectorId": 1, "csChargingProfiles": PROFILE},
        {"status": "Accepted"},
    ),
    "ClearChargingProfile": ({"id": 7}, {"status": "Accepted"}),
    "GetCompositeSchedule": (
        {"connectorId": 1, "duration": 3600, "chargingRateUnit": "W"},
        {
            "status": "Accepted",
            "connectorId": 1,
            "chargingSchedule": {
                "chargingRateUnit": "W",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7400.0}],
            },
        },
    ),
}


def test_the_round_trips_cover_every_command_of_the_issue():
    assert set(ROUND_TRIPS) == set(ACTIONS)
    assert len(ACTIONS) == 19


async def test_every_command_reaches_the_charger_and_returns_its_answer(
    charger_cp, connect
):
    charger = await connect()
    charge_point = await db(ChargePoint.objects.get)(identity="CP-1")

    results = {}
    for action, (payload, answer) in ROUND_TRIPS.items():
        sending = asyncio.create_task(
            command_send_async(
                charge_point=charge_point, action=action, payload=payload
            )
        )
        call = await answer_next(charger, answer)
        assert (call[2], call[3]) == (action, payload)
        results[action] = await sending
    await charger.disconnect()

    for action, (_, answer) in ROUND_TRIPS.items():
        result = results[action]
        assert (action, result.outcome, result.response) == (action, "answered", answer)
        assert result.flags == []  # our answers and calls fit the 1.6 schemas
    commands = await db(
        lambda: list(RemoteCommand.objects.values_list("action", "outcome"))
    )()
    assert sorted(commands) == sorted((a, "answered") for a in ROUND_TRIPS)
    out = await db(Frame.objects.filter(direction="out", message_type=2).count)()
    answered = await db(Frame.objects.filter(direction="in", message_type=3).count)()
    assert out == answered == 19


async def test_a_call_error_is_recorded_and_opens_an_alert(charger_cp, connect):
    charger = await connect()
    charge_point = await db(ChargePoint.objects.get)(identity="CP-1")
    before = COMMANDS.labels(action="Reset", outcome="call_error")._value.get()

    sending = asyncio.create_task(
        command_send_async(
            charge_point=charge_point, action="Reset", payload={"type": "Hard"}
        )
    )
    await answer_next(charger, error="NotSupported")
    result = await sending
    ok = asyncio.create_task(
        command_send_async(
            charge_point=charge_point, action="Reset", payload={"type": "Soft"}
        )
    )
    await answer_next(charger, {"status": "Accepted"})
    await ok
    await charger.disconnect()

    assert (result.outcome, result.error_code) == ("call_error", "NotSupported")
    assert (
        COMMANDS.labels(action="Reset", outcome="call_error")._value.get() == before + 1
    )
    alert = await db(Alert.objects.get)(kind=AlertKind.COMMAND_FAILED)
    assert alert.subject == "CP-1:Reset" and alert.resolved_at is not None


async def test_a_silent_charger_times_out(charger_cp, connect):
    charger = await connect()
    charge_point = await db(ChargePoint.objects.get)(identity="CP-1")

    result = await command_send_async(
        charge_point=charge_point, action="ClearCache", payload={}, timeout_s=0.5
    )
    late_call = await charger.receive_json_from(timeout=1)
    await charger.send_json_to([3, late_call[1], {"status": "Accepted"}])
    beat = await charger.call("Heartbeat", {})
    await charger.disconnect()

    assert result.outcome == "timeout"
    command = await db(RemoteCommand.objects.get)(pk=result.command_id)
    assert command.outcome == "timeout" and command.finished_at is not None
    assert await db(Alert.objects.filter(kind=AlertKind.COMMAND_FAILED).exists)()
    assert beat[0] == 3  # the late answer did not confuse the connection


async def test_a_late_answer_is_stored_and_the_next_command_is_not_confused(
    charger_cp, connect, caplog
):
    charger = await connect()
    charge_point = await db(ChargePoint.objects.get)(identity="CP-1")
    timed_out = await command_send_async(
        charge_point=charge_point, action="ClearCache", payload={}, timeout_s=0.5
    )
    late_call = await charger.receive_json_from(timeout=1)

    with caplog.at_level(logging.WARNING):
        await charger.send_json_to([3, late_call[1], {"status": "Accepted"}])
        sending = asyncio.create_task(
            command_send_async(
                charge_point=charge_point, action="GetLocalListVersion", payload={}
            )
        )
        await answer_next(charger, {"listVersion": 4})
        result = await sending
    await charger.disconnect()

    assert timed_out.outcome == "timeout"
    assert (result.outcome, result.response) == ("answered", {"listVersion": 4})
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    late = [r for r in caplog.records if "no call waiting" in r.getMessage()]
    assert [(r.levelname, r.charge_point) for r in late] == [("WARNING", "CP-1")]
    stored = await db(
        Frame.objects.filter(direction="in", message_id=late_call[1]).count
    )()
    assert stored == 1


async def test_one_call_at_a_time_goes_to_a_charger(charger_cp, connect):
    charger = await connect()
    charge_point = await db(ChargePoint.objects.get)(identity="CP-1")

    first = asyncio.create_task(
        command_send_async(charge_point=charge_point, action="ClearCache", payload={})
    )
    second = asyncio.create_task(
        command_send_async(
            charge_point=charge_point, action="GetLocalListVersion", payload={}
        )
    )
    call_one = await charger.receive_json_from(timeout=5)
    assert await charger.receive_nothing(timeout=0.3)  # the second waits its turn
    await charger.send_json_to([3, call_one[1], {"status": "Accepted"}])
    call_two = await answer_next(charger, {"listVersion": 1})
    results = await asyncio.gather(first, second)
    await charger.disconnect()

    assert {call_one[2], call_two[2]} == {"ClearCache", "GetLocalListVersion"}
    assert [r.outcome for r in results] == ["answered", "answered"]


async def test_a_charger_that_is_not_connected_is_reported_at_once(charger_cp):
    started = time.monotonic()
    result = await command_send_async(
        charge_point=charger_cp, action="Reset", payload={"type": "Soft"}
    )

    assert result.outcome == "not_connected"
    assert time.monotonic() - started < 1
    command = await db(RemoteCommand.objects.get)()
    assert command.outcome == "not_connected"


async def test_a_stale_connected_flag_is_corrected(charger_cp, settings):
    settings.OCPP_COMMAND_ACK_TIMEOUT_S = 0.3
    await db(ChargePoint.objects.filter(pk=charger_cp.pk).update)(is_connected=True)

    result = await command_send_async(
        charge_point=charger_cp, action="ClearCache", payload={}
    )

    assert result.outcome == "not_connected"
    assert not (await db(ChargePoint.objects.get)(pk=charger_cp.pk)).is_connected


@pytest.mark.parametrize(
    ("action", "payload"),
    [
        ("Reset", {"type": "Sideways"}),
        ("RemoteStopTransaction", {}),
        ("UnlockConnector", {"connectorId": "one"}),
        ("SelfDestruct", {}),
    ],
)
def test_an_invalid_payload_is_refused_before_sending(charger_cp, action, payload):
    result = command_send(charge_point=charger_cp, action=action, payload=payload)

    assert result.outcome == "invalid" and result.error_description
    assert RemoteCommand.objects.get().outcome == "invalid"


async def test_a_slow_confirmation_from_a_live_charger_is_waited_for(
    charger_cp, settings
):
    from django.utils import timezone

    settings.OCPP_COMMAND_ACK_TIMEOUT_S = 0.2
    await db(ChargePoint.objects.filter(pk=charger_cp.pk).update)(
        is_connected=True, last_seen_at=timezone.now()
    )

    result = await command_send_async(
        charge_point=charger_cp, action="ClearCache", payload={}, timeout_s=0.5
    )

    # Nobody took it in the whole timeout: not connected, but a charger heard
    # from a moment ago is not marked offline on a guess.
    assert result.outcome == "not_connected"
    assert (await db(ChargePoint.objects.get)(pk=charger_cp.pk)).is_connected


async def test_a_command_delivered_after_its_deadline_is_dropped(charger_cp, connect):
    import time as clock

    from channels.layers import get_channel_layer

    from ocpp_bridge.consumers import charge_point_group

    charger = await connect()
    layer = get_channel_layer()
    reply = await layer.new_channel()

    await layer.group_send(
        charge_point_group(charger_cp.pk),
        {
            "type": "ocpp.command",
            "action": "Reset",
            "payload": {"type": "Hard"},
            "message_id": "late-1",
            "reply_channel": reply,
            "timeout_s": 30,
            "expires_at": clock.time() - 1,
        },
    )

    assert await charger.receive_nothing(timeout=0.5)
    await charger.disconnect()
