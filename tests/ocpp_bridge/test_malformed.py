"""Frames that cannot be read get the CallError OCPP-J names; the socket stays."""

import json
import logging
import traceback

from channels.db import database_sync_to_async as db

from ocpp_bridge.models import Frame
from stations.models import ChargePoint

# (frame as sent, message id answered, error code) -- OCPP-J 1.6 §4.2.3.
UNREADABLE = [
    ("this is not json", "-1", "FormationViolation"),
    ('{"not": "an array"}', "-1", "FormationViolation"),
    ('[5, "m5", "Heartbeat", {}]', "m5", "ProtocolError"),
    ("[2]", "-1", "ProtocolError"),
    ('[2, "m6", "Heartbeat"]', "m6", "FormationViolation"),
    ('[2, "m7", "Authorize", ["TAG"]]', "m7", "FormationViolation"),
    ('[2, "m8", "FlyToTheMoon", {}]', "m8", "NotSupported"),
    ('[2, "m9", "Reset", {"type": "Hard"}]', "m9", "NotImplemented"),
    ('[2, "m10", "Authorize", {}]', "m10", "ProtocolError"),
    (
        '[2, "m11", "StartTransaction", {"connectorId": "one", "idTag": "A",'
        ' "meterStart": 0, "timestamp": "2025-01-01T00:00:00Z"}]',
        "m11",
        "TypeConstraintViolation",
    ),
    (
        '[2, "m12", "StatusNotification", {"connectorId": -1, "errorCode": "NoError",'
        ' "status": "Available"}]',
        "m12",
        "PropertyConstraintViolation",
    ),
]


async def test_each_unreadable_frame_gets_its_call_error_and_the_socket_stays_open(
    charger_cp, connect
):
    charger = await connect()

    answers = []
    for text, _, _ in UNREADABLE:
        reply = await charger.raw(text)
        answers.append((reply[0], reply[1], reply[2]))
        assert len(reply) == 5 and isinstance(reply[4], dict)
    # An answer to nothing, and a CallError from the charger: stored, not answered.
    await charger.send_to(text_data='[3, "never-sent", {}]')
    await charger.send_to(text_data='[4, "never-sent-2", "GenericError"]')
    still = await charger.call("Heartbeat", {})
    await charger.disconnect()

    assert answers == [(4, message_id, code) for _, message_id, code in UNREADABLE]
    assert still[0] == 3
    stored = await db(
        lambda: list(
            Frame.objects.filter(direction="in")
            .order_by("id")
            .values_list("raw", flat=True)
        )
    )()
    assert stored[: len(UNREADABLE)] == [text for text, _, _ in UNREADABLE]
    assert '[3, "never-sent", {}]' in stored
    flagged = await db(Frame.objects.get)(raw="this is not json")
    assert flagged.flags == ["not_json"]
    sent = await db(
        lambda: list(
            Frame.objects.filter(direction="out", message_type=4).values_list(
                "error_code", flat=True
            )
        )
    )()
    assert sorted(sent) == sorted(code for _, _, code in UNREADABLE)
    charge_point = await db(ChargePoint.objects.get)(identity="CP-1")
    assert charge_point.malformed_frames >= 1


async def test_schema_deviations_of_readable_frames_are_flagged_not_refused(
    charger_cp, connect
):
    charger = await connect()

    reply = await charger.call(
        "Heartbeat", {"unexpected": True}, message_id="12345678901234567890"
    )
    numeric = await charger.raw(json.dumps([2, 42, "Heartbeat", {}]))
    await charger.disconnect()

    assert reply[0] == 3 and numeric[:2] == [3, 42]
    frame = await db(Frame.objects.get)(
        message_id="12345678901234567890", direction="in"
    )
    assert frame.flags == ["schema:additionalProperties:-"]


async def test_a_failing_handler_answers_internal_error_and_keeps_the_frame(
    charger_cp, connect, monkeypatch
):
    from stations import services

    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(services, "charge_point_heartbeat", broken)
    charger = await connect()

    reply = await charger.call("Heartbeat", {})
    status = await charger.call(
        "StatusNotification",
        {"connectorId": 1, "errorCode": "NoError", "status": "Available"},
    )
    await charger.disconnect()

    assert reply[0] == 4 and reply[2] == "InternalError"
    assert status[0] == 3
    assert await db(Frame.objects.filter(action="Heartbeat", direction="in").exists)()


def _traceback(record: logging.LogRecord) -> str:
    if record.exc_info:
        return "".join(traceback.format_exception(*record.exc_info))
    return record.exc_text or ""


async def test_a_refused_frame_is_one_warning_about_its_charger_not_a_traceback(
    charger_cp, connect, caplog
):
    charger = await connect()

    with caplog.at_level(logging.WARNING):
        for text, _, _ in UNREADABLE:
            await charger.raw(text)
        still = await charger.call("Heartbeat", {})
    await charger.disconnect()

    assert still[0] == 3
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert [r for r in caplog.records if _traceback(r)] == []
    refusals = [r for r in caplog.records if r.getMessage().startswith("Refused")]
    # The CALLs that reached a handler (m8 to m12); the consumer answers the
    # frames it cannot even split into a CALL without going through the package.
    assert [r.getMessage() for r in refusals] == [
        "Refused FlyToTheMoon m8 from the charger with NotSupported: Requested "
        "Action is not known by receiver",
        "Refused Reset m9 from the charger with NotImplemented: Request Action "
        "is recognized but not supported by the receiver",
        "Refused Authorize m10 from the charger with ProtocolError: idTag is required.",
        "Refused StartTransaction m11 from the charger with "
        "TypeConstraintViolation: connectorId must be an integer.",
        "Refused StatusNotification m12 from the charger with "
        "PropertyConstraintViolation: connectorId must be at least 0.",
    ]
    assert {(r.levelname, r.charge_point) for r in refusals} == {("WARNING", "CP-1")}


async def test_a_fault_in_our_own_handler_is_still_an_error_with_its_traceback(
    charger_cp, connect, monkeypatch, caplog
):
    from stations import services

    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(services, "charge_point_heartbeat", broken)
    charger = await connect()

    with caplog.at_level(logging.WARNING):
        reply = await charger.call("Heartbeat", {})
    await charger.disconnect()

    assert reply[2] == "InternalError"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].charge_point == "CP-1"
    assert "RuntimeError: database went away" in _traceback(errors[0])
