"""Frames of many chargers are stored in shared batches, and still each on its own.

The frame writer (ocpp_bridge/writer.py) stores what several sockets hand it
at once in one transaction; these tests check what a charger and an operator
see: every frame answered is stored with its data, and one charger's failure
costs another charger nothing.
"""

import asyncio
import json

import pytest
from channels.db import database_sync_to_async as db

from ocpp_bridge.models import Frame
from sessions.models import ChargingSession, IdToken, MeterSample

CHARGERS = 12


def meter_values(transaction_id: int, wh: int, stamp: str) -> dict:
    return {
        "connectorId": 1,
        "transactionId": transaction_id,
        "meterValue": [
            {
                "timestamp": stamp,
                "sampledValue": [
                    {"value": str(wh), "measurand": "Energy.Active.Import.Register"},
                    {"value": "7200", "measurand": "Power.Active.Import", "unit": "W"},
                ],
            }
        ],
    }


async def _open_chargers(make_charger, connect, count: int = CHARGERS):
    await db(IdToken.objects.create)(value="TAG-1")
    chargers, transactions = [], []
    for number in range(count):
        await db(make_charger)(f"CP-{number}")
        charger = await connect(f"CP-{number}")
        start = await charger.call(
            "StartTransaction",
            {
                "connectorId": 1,
                "idTag": "TAG-1",
                "meterStart": 1000,
                "timestamp": "2025-05-01T08:00:00Z",
            },
        )
        chargers.append(charger)
        transactions.append(start[2]["transactionId"])
    return chargers, transactions


async def test_chargers_sending_at_once_are_all_answered_and_stored(
    make_charger, connect
):
    chargers, transactions = await _open_chargers(make_charger, connect)

    for minute, wh in ((10, 2000), (20, 3000)):
        replies = await asyncio.gather(
            *(
                charger.call(
                    "MeterValues",
                    meter_values(tx, wh + number, f"2025-05-01T08:{minute}:00Z"),
                )
                for number, (charger, tx) in enumerate(
                    zip(chargers, transactions, strict=True)
                )
            )
        )
        assert [reply[0] for reply in replies] == [3] * CHARGERS
        assert all(reply[2] == {} for reply in replies)
    for charger in chargers:
        await charger.disconnect()

    frames = await db(
        lambda: sorted(
            Frame.objects.filter(action="MeterValues").values_list(
                "direction", "identity"
            )
        )
    )()
    expected = sorted(
        (direction, f"CP-{number}")
        for number in range(CHARGERS)
        for direction in ("in", "out")
        for _ in range(2)
    )
    assert frames == expected
    assert await db(MeterSample.objects.count)() == 2 * 2 * CHARGERS
    sessions = await db(
        lambda: {s.pk: s.energy_wh for s in ChargingSession.objects.all()}
    )()
    # Live energy: the newest register minus meterStart, charger by charger.
    assert sessions == {
        tx: 3000 + number - 1000 for number, tx in enumerate(transactions)
    }


async def test_one_chargers_failing_data_does_not_fail_the_others(
    make_charger, connect, monkeypatch
):
    from sessions import services

    chargers, transactions = await _open_chargers(make_charger, connect, count=4)
    bad = transactions[1]
    real = services.meter_samples_record_many

    def broken_for_one(*, reports):
        if any(report.transaction_ref == bad for report in reports):
            raise RuntimeError("disk full for this session's partition")
        return real(reports=reports)

    monkeypatch.setattr(services, "meter_samples_record_many", broken_for_one)

    replies = await asyncio.gather(
        *(
            charger.call("MeterValues", meter_values(tx, 2000, "2025-05-01T08:10:00Z"))
            for charger, tx in zip(chargers, transactions, strict=True)
        )
    )
    still = await chargers[1].call("Heartbeat", {})
    for charger in chargers:
        await charger.disconnect()

    assert [reply[0] for reply in replies] == [3, 4, 3, 3]
    assert replies[1][2] == "InternalError"
    assert still[0] == 3  # the socket stays up
    stored = await db(
        lambda: sorted(set(MeterSample.objects.values_list("session_id", flat=True)))
    )()
    assert stored == sorted(tx for tx in transactions if tx != bad)
    # The refused frame is kept, with the CallError that answered it and no
    # CallResult claiming its data was stored.
    log = await db(
        lambda: list(
            Frame.objects.filter(identity="CP-1", action="MeterValues")
            .order_by("id")
            .values_list("direction", "message_type", "error_code")
        )
    )()
    assert log == [("in", 2, ""), ("out", 4, "InternalError")]


async def test_a_frame_that_cannot_be_stored_is_not_answered(
    charger_cp, connect, monkeypatch
):
    from ocpp_bridge import services

    charger = await connect()
    real = services._writes_store

    def database_down(writes):
        raise OSError("connection refused")

    monkeypatch.setattr(services, "_writes_store", database_down)
    await charger.send_to(
        text_data=json.dumps(
            [2, "lost-1", "MeterValues", meter_values(1, 2000, "2025-05-01T08:10:00Z")]
        )
    )
    nothing = await charger.receive_nothing(timeout=1)
    monkeypatch.setattr(services, "_writes_store", real)
    resent = await charger.call(
        "MeterValues",
        meter_values(1, 2000, "2025-05-01T08:10:00Z"),
        message_id="lost-1",
    )
    await charger.disconnect()

    # Nothing acknowledged that was not stored; the charger's resend is.
    assert nothing
    assert resent[0] == 3
    directions = await db(
        lambda: list(
            Frame.objects.filter(message_id="lost-1")
            .order_by("id")
            .values_list("direction", flat=True)
        )
    )()
    assert directions == ["in", "out"]


def test_a_reading_stored_meanwhile_through_another_socket_is_kept_once(
    charger_cp,
):
    """A charger resending on a new socket while the old one still stores."""
    import threading
    import time
    from datetime import UTC, datetime

    from django.db import connection, transaction

    from ocpp_bridge.services import FrameWrite, frame_build, frame_writes_store
    from sessions.services import MeterValuesReport, meter_samples_record

    if connection.vendor != "postgresql":
        pytest.skip("SQLite locks the whole database: two writers cannot overlap")
    session = ChargingSession.objects.create(
        charge_point=charger_cp,
        started_at=datetime(2025, 5, 1, 8, tzinfo=UTC),
        meter_start_wh=0,
    )
    at = datetime(2025, 5, 1, 8, 10, tzinfo=UTC)
    reading = {
        "timestamp": at,
        "raw_timestamp": "2025-05-01T08:10:00Z",
        "measurand": "Energy.Active.Import.Register",
        "phase": "",
        "location": "Outlet",
        "context": "Sample.Periodic",
        "unit": "Wh",
        "raw_value": "2000",
        "flags": [],
    }
    report = MeterValuesReport(
        charge_point_id=charger_cp.pk,
        connector_number=1,
        transaction_ref=session.pk,
        samples=[dict(reading)],
    )
    storing = threading.Event()

    def old_socket() -> None:
        with transaction.atomic():
            meter_samples_record(**{**vars(report), "samples": [dict(reading)]})
            storing.set()
            time.sleep(0.5)  # committed while the new socket's copy waits
        connection.close()

    thread = threading.Thread(target=old_socket)
    thread.start()
    storing.wait(5)
    frame = frame_build(
        charge_point_id=charger_cp.pk, identity="CP-1", direction="in", raw="[2]"
    )
    outcomes = frame_writes_store(
        writes=[
            FrameWrite(
                charge_point_id=charger_cp.pk, frames=[frame], meter_values=report
            )
        ]
    )
    thread.join()

    assert outcomes == [None]
    assert MeterSample.objects.filter(session=session).count() == 1
    assert Frame.objects.filter(identity="CP-1", direction="in").count() == 1
    assert ChargingSession.objects.get(pk=session.pk).energy_wh == 2000
