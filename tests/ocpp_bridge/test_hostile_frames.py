"""Frames a hostile or buggy charger sends that Python reads but PostgreSQL
cannot store, or whose values overflow our columns and clocks: every one is
stored in the frame log and answered, and the socket stays open."""

import json

from channels.db import database_sync_to_async as db

from ocpp_bridge.models import Frame

NOW = "2026-01-05T10:00:00Z"

# (frame as sent, message id answered, error code)
STORE_THEN_REFUSE = [
    # JSON (RFC 8259) has no NaN or Infinity; Python's json reads them anyway
    # and PostgreSQL's jsonb refuses them.
    ('[2, "n1", "Heartbeat", {"x": NaN}]', "-1", "FormationViolation"),
    ('[2, "n2", "Heartbeat", {"x": -Infinity}]', "-1", "FormationViolation"),
    # Nesting deep enough to exhaust Python's recursion limit.
    (
        '[2, "n3", "Heartbeat", ' + "[" * 5000 + "]" * 5000 + "]",
        "-1",
        "FormationViolation",
    ),
    # A NUL (C string terminator) and an unpaired surrogate: jsonb and UTF-8
    # cannot hold them.
    ('[2, "n4", "Authorize", {"idTag": "TAG\\u0000"}]', "n4", "FormationViolation"),
    ('[2, "n5", "Authorize", {"idTag": "\\ud83d"}]', "n5", "FormationViolation"),
    # Integers past OCPP's 32-bit integer overflow our columns.
    (
        '[2, "n6", "StatusNotification", {"connectorId": 100000000000000000000,'
        ' "errorCode": "NoError", "status": "Available"}]',
        "n6",
        "PropertyConstraintViolation",
    ),
    (
        '[2, "n7", "StartTransaction", {"connectorId": 1, "idTag": "T",'
        f' "meterStart": 1000000000000000000000000000000, "timestamp": "{NOW}"}}]',
        "n7",
        "PropertyConstraintViolation",
    ),
    (
        '[2, "n8", "StopTransaction", {"transactionId": 100000000000000000000,'
        f' "meterStop": 5, "timestamp": "{NOW}"}}]',
        "n8",
        "PropertyConstraintViolation",
    ),
    (
        '[2, "n9", "StartTransaction", {"connectorId": 1, "idTag": "T",'
        f' "meterStart": "1e309", "timestamp": "{NOW}"}}]',
        "n9",
        "PropertyConstraintViolation",
    ),
]


async def test_frames_postgres_cannot_hold_are_stored_and_refused_socket_open(
    charger_cp, connect
):
    charger = await connect()
    answers = []
    for text, _, _ in STORE_THEN_REFUSE:
        reply = await charger.raw(text)
        answers.append((reply[0], reply[1], reply[2]))
    # A binary frame holding a raw NUL byte is stored too.
    await charger.send_to(bytes_data=b'\x00[2, "bin", "Heartbeat", {}]')
    binary_reply = json.loads(await charger.receive_from(timeout=5))
    still = await charger.call("Heartbeat", {})
    await charger.disconnect()

    assert answers == [(4, mid, code) for _, mid, code in STORE_THEN_REFUSE]
    assert binary_reply[0] == 4 and binary_reply[2] == "FormationViolation"
    assert still[0] == 3
    stored = await db(
        lambda: list(
            Frame.objects.filter(direction="in")
            .order_by("id")
            .values_list("raw", flat=True)
        )
    )()
    assert stored[: len(STORE_THEN_REFUSE)] == [t for t, _, _ in STORE_THEN_REFUSE]
    assert any("bin" in raw for raw in stored)


async def test_timestamps_past_the_calendar_edge_are_read_as_unreadable_not_errors(
    charger_cp, connect
):
    charger = await connect()
    replies = []
    for i, stamp in enumerate(
        ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"]
    ):
        replies.append(
            await charger.call(
                "StatusNotification",
                {
                    "connectorId": 1,
                    "errorCode": "NoError",
                    "status": "Available",
                    "timestamp": stamp,
                },
            )
        )
        replies.append(
            await charger.call(
                "MeterValues",
                {
                    "connectorId": 1,
                    "meterValue": [
                        {"timestamp": stamp, "sampledValue": [{"value": str(i)}]}
                    ],
                },
            )
        )
        replies.append(
            await charger.call(
                "StopTransaction",
                {"transactionId": 7000 + i, "meterStop": 5, "timestamp": stamp},
            )
        )
    await charger.disconnect()
    assert [r[0] for r in replies] == [3] * len(replies), replies
