"""Everything a charger sends is answered and stored (WebsocketCommunicator)."""

from datetime import UTC, datetime, timedelta

from channels.db import database_sync_to_async as db

from giu_ev.metrics import ENERGY_DELIVERED
from ocpp_bridge.models import Frame
from sessions.models import ChargingSession, IdToken, MeterSample, TransactionEvent
from stations.models import ChargePoint, Connector, Site, StatusEvent


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_a_full_transaction_is_answered_and_stored(charger_cp, connect):
    await db(IdToken.objects.create)(value="TAG-1")
    before = ENERGY_DELIVERED.labels(site="depot")._value.get()
    charger = await connect()

    boot = await charger.call(
        "BootNotification",
        {
            "chargePointVendor": "Acme",
            "chargePointModel": "W22",
            "firmwareVersion": "1.2",
        },
    )
    beat = await charger.call("Heartbeat", {})
    await charger.call(
        "StatusNotification",
        {"connectorId": 0, "errorCode": "NoError", "status": "Available"},
    )
    await charger.call(
        "StatusNotification",
        {
            "connectorId": 1,
            "errorCode": "NoError",
            "status": "Preparing",
            "timestamp": "2025-05-01T08:00:00Z",
        },
    )
    auth = await charger.call("Authorize", {"idTag": "tag-1"})
    start = await charger.call(
        "StartTransaction",
        {
            "connectorId": 1,
            "idTag": "TAG-1",
            "meterStart": 1000,
            "timestamp": "2025-05-01T08:00:05Z",
        },
    )
    tx = start[2]["transactionId"]
    meter = await charger.call(
        "MeterValues",
        {
            "connectorId": 1,
            "transactionId": tx,
            "meterValue": [
                {
                    "timestamp": "2025-05-01T08:30:00Z",
                    "sampledValue": [
                        {
                            "value": "4.5",
                            "unit": "kWh",
                            "measurand": "Energy.Active.Import.Register",
                        },
                        {
                            "value": "7.2",
                            "unit": "kW",
                            "measurand": "Power.Active.Import",
                        },
                        {
                            "value": "16.1",
                            "unit": "A",
                            "measurand": "Current.Import",
                            "phase": "L1",
                        },
                    ],
                },
            ],
        },
    )
    stop = await charger.call(
        "StopTransaction",
        {
            "transactionId": tx,
            "meterStop": 9000,
            "timestamp": "2025-05-01T09:00:00Z",
            "idTag": "TAG-1",
            "reason": "EVDisconnected",
            "transactionData": [
                {
                    "timestamp": "2025-05-01T09:00:00Z",
                    "sampledValue": [
                        {
                            "value": "9000",
                            "measurand": "Energy.Active.Import.Register",
                            "context": "Transaction.End",
                        }
                    ],
                }
            ],
        },
    )
    await charger.disconnect()

    assert boot[2]["status"] == "Accepted" and boot[2]["interval"] == 300
    assert boot[2]["currentTime"].endswith("Z") and beat[2]["currentTime"].endswith("Z")
    assert auth[2] == {"idTagInfo": {"status": "Accepted"}}
    assert start[2]["idTagInfo"] == {"status": "Accepted"}
    assert meter[2] == {} and stop[2] == {"idTagInfo": {"status": "Accepted"}}

    charge_point = await db(ChargePoint.objects.get)(identity="CP-1")
    assert (charge_point.vendor, charge_point.model) == ("Acme", "W22")
    assert charge_point.last_heartbeat_at is not None
    assert charge_point.status == "Available" and charge_point.is_connected is False
    connector = await db(Connector.objects.get)(number=1)
    assert connector.status == "Preparing"

    session = await db(ChargingSession.objects.get)(pk=tx)
    assert session.started_at == utc("2025-05-01T08:00:05Z")
    assert session.stopped_at == utc("2025-05-01T09:00:00Z")
    assert session.energy_wh == 8000 and session.stop_reason == "EVDisconnected"
    assert session.id_token_id is not None

    samples = await db(
        lambda: {
            (s.measurand, s.phase): (s.raw_value, s.unit, s.value, s.normalised_unit)
            for s in MeterSample.objects.filter(session=session)
        }
    )()
    assert samples[("Energy.Active.Import.Register", "")][:3] in (
        ("4.5", "kWh", 4500.0),
        ("9000", "", 9000.0),
    )
    assert samples[("Power.Active.Import", "")] == ("7.2", "kW", 7200.0, "W")
    assert samples[("Current.Import", "L1")] == ("16.1", "A", 16.1, "A")
    assert await db(MeterSample.objects.filter(session=session).count)() == 4

    frames = await db(
        lambda: list(
            Frame.objects.filter(charge_point__identity="CP-1")
            .order_by("created_at", "id")
            .values_list("direction", "action")
        )
    )()
    assert frames[:2] == [("in", "BootNotification"), ("out", "BootNotification")]
    assert len(frames) == 16
    assert ENERGY_DELIVERED.labels(site="depot")._value.get() - before == 8000


async def test_authorize_answers_the_status_of_the_token(charger_cp, connect):
    past = datetime.now(UTC) - timedelta(days=1)
    future = datetime(2030, 1, 1, tzinfo=UTC)
    await db(IdToken.objects.create)(
        value="AB12", expires_at=future, parent_id_tag="Fleet"
    )
    await db(IdToken.objects.create)(value="OLD1", expires_at=past)
    await db(IdToken.objects.create)(value="BLK1", status="Blocked")
    charger = await connect()

    accepted = await charger.call("Authorize", {"idTag": "ab12"})
    expired = await charger.call("Authorize", {"idTag": "OLD1"})
    blocked = await charger.call("Authorize", {"idTag": "BLK1"})
    unknown = await charger.call("Authorize", {"idTag": "NOPE"})
    await charger.disconnect()

    assert accepted[2]["idTagInfo"] == {
        "status": "Accepted",
        "expiryDate": "2030-01-01T00:00:00.000Z",
        "parentIdTag": "Fleet",
    }
    assert expired[2]["idTagInfo"]["status"] == "Expired"
    assert blocked[2]["idTagInfo"]["status"] == "Blocked"
    assert unknown[2]["idTagInfo"]["status"] == "Invalid"


async def test_firmware_diagnostics_data_transfer_and_security_messages(
    charger_cp, connect
):
    charger = await connect()

    replies = [
        await charger.call("DataTransfer", {"vendorId": "com.acme", "data": "x"}),
        await charger.call("DiagnosticsStatusNotification", {"status": "Uploaded"}),
        await charger.call("FirmwareStatusNotification", {"status": "Installed"}),
        await charger.call(
            "SecurityEventNotification",
            {"type": "StartupOfTheDevice", "timestamp": "2025-01-01T00:00:00Z"},
        ),
        await charger.call("LogStatusNotification", {"status": "Uploading"}),
        await charger.call(
            "SignedFirmwareStatusNotification", {"status": "SignatureVerified"}
        ),
        await charger.call("SignCertificate", {"csr": "-----BEGIN CSR-----"}),
    ]
    await charger.disconnect()

    assert [r[2] for r in replies] == [
        {"status": "UnknownVendorId"},
        {},
        {},
        {},
        {},
        {},
        {"status": "Rejected"},
    ]
    progress = (await db(ChargePoint.objects.get)(identity="CP-1")).boot_info[
        "_progress"
    ]
    assert progress["firmware"]["status"] == "Installed"
    assert progress["diagnostics"]["status"] == "Uploaded"
    assert progress["log"]["status"] == "Uploading"
    assert progress["signed_firmware"]["status"] == "SignatureVerified"
    data = await db(Frame.objects.get)(action="DataTransfer", direction="in")
    assert data.payload == {"vendorId": "com.acme", "data": "x"}


async def test_timestamps_without_zone_are_read_in_the_site_time_zone(
    charger_cp, connect
):
    berlin = await db(Site.objects.create)(
        code="b", name="B", time_zone="Europe/Berlin"
    )
    await db(ChargePoint.objects.filter(pk=charger_cp.pk).update)(site=berlin)
    charger = await connect()

    await charger.call(
        "StatusNotification",
        {
            "connectorId": 1,
            "errorCode": "NoError",
            "status": "Charging",
            "timestamp": "2023-10-19T15:28:07",
        },
    )
    await charger.call(
        "StatusNotification",
        {
            "connectorId": 2,
            "errorCode": "NoError",
            "status": "Available",
            "timestamp": "1970-01-01T00:00:09Z",
        },
    )
    await charger.disconnect()

    naive = await db(StatusEvent.objects.get)(connector_number=1)
    assert naive.timestamp == utc("2023-10-19T13:28:07Z")  # CEST is UTC+2
    assert naive.timestamp_zone_assumed and naive.raw_timestamp == "2023-10-19T15:28:07"
    unset = await db(StatusEvent.objects.get)(connector_number=2)
    assert "clock_unset" in unset.flags
    assert unset.raw_timestamp == "1970-01-01T00:00:09Z"
    assert abs(unset.timestamp - datetime.now(UTC)) < timedelta(minutes=1)


async def test_a_later_start_on_a_busy_connector_supersedes_the_open_session(
    charger_cp, connect
):
    charger = await connect()

    first = await charger.call(
        "StartTransaction",
        {
            "connectorId": 1,
            "idTag": "A",
            "meterStart": 0,
            "timestamp": "2025-01-01T10:00:00Z",
        },
    )
    second = await charger.call(
        "StartTransaction",
        {
            "connectorId": 1,
            "idTag": "B",
            "meterStart": 500,
            "timestamp": "2025-01-01T12:00:00Z",
        },
    )
    await charger.disconnect()

    assert first[2]["transactionId"] != second[2]["transactionId"]
    old = await db(ChargingSession.objects.get)(pk=first[2]["transactionId"])
    assert old.stop_reason == "superseded" and old.stopped_at == utc(
        "2025-01-01T12:00:00Z"
    )
    assert await db(TransactionEvent.objects.filter(kind="superseded").count)() == 1


async def test_a_charger_back_without_boot_is_served_and_its_stop_matched(
    charger_cp, connect
):
    first = await connect()
    start = await first.call(
        "StartTransaction",
        {
            "connectorId": 1,
            "idTag": "A",
            "meterStart": 10,
            "timestamp": "2025-01-01T10:00:00Z",
        },
    )
    await first.disconnect()

    # The server restarted; the charger goes straight to work on reconnect.
    again = await connect()
    beat = await again.call("Heartbeat", {})
    status = await again.call(
        "StatusNotification",
        {"connectorId": 1, "errorCode": "NoError", "status": "Finishing"},
    )
    stop = await again.call(
        "StopTransaction",
        {
            "transactionId": start[2]["transactionId"],
            "meterStop": 2010,
            "timestamp": "2025-01-01T11:00:00Z",
        },
    )
    await again.disconnect()

    assert beat[0] == status[0] == stop[0] == 3
    session = await db(ChargingSession.objects.get)(pk=start[2]["transactionId"])
    assert session.energy_wh == 2000 and not session.is_unmatched


async def test_meter_values_in_odd_units_are_kept_raw_and_normalised(
    charger_cp, connect
):
    charger = await connect()

    await charger.call(
        "MeterValues",
        {
            "connectorId": 1,
            "meterValue": [
                {
                    "timestamp": "2025-01-01T10:00:00Z",
                    "sampledValue": [
                        {"value": "1,5", "unit": "kwh"},
                        {
                            "value": 230,
                            "unit": "V",
                            "measurand": "Voltage",
                            "phase": "L1-N",
                        },
                        {
                            "value": "12",
                            "unit": "furlongs",
                            "measurand": "Power.Active.Import",
                        },
                        {
                            "value": "abc",
                            "unit": "Wh",
                            "measurand": "Energy.Active.Export.Register",
                        },
                        {"value": "2", "unit": "kWh"},
                    ],
                }
            ],
        },
    )
    await charger.disconnect()

    rows = await db(
        lambda: {
            s.raw_value: (s.value, s.normalised_unit, s.flags)
            for s in MeterSample.objects.all()
        }
    )()
    assert "2" not in rows  # same reading twice in one message: the first is kept
    assert "conflicting_copy" in rows["1,5"][2]
    assert rows["1,5"][:2] == (1500.0, "Wh")
    assert {"decimal_comma", "unit_not_in_enum"} <= set(rows["1,5"][2])
    assert rows["230"][:2] == (230.0, "V") and "value_not_string" in rows["230"][2]
    assert rows["12"][:2] == (12.0, "furlongs") and "unit_unknown" in rows["12"][2]
    assert rows["abc"][0] is None and "value_unreadable" in rows["abc"][2]


async def test_a_slow_write_for_one_charger_does_not_hold_up_another(
    make_charger, connect, monkeypatch
):
    import asyncio
    import json
    import time

    from stations import services

    await db(make_charger)("SLOW-1")
    await db(make_charger)("FAST-1")
    real_boot = services.charge_point_boot

    def slow_boot(**kwargs):
        time.sleep(1.5)  # a database under load
        return real_boot(**kwargs)

    monkeypatch.setattr(services, "charge_point_boot", slow_boot)
    slow = await connect("SLOW-1")
    fast = await connect("FAST-1")

    await slow.send_to(
        text_data=json.dumps(
            [
                2,
                "b1",
                "BootNotification",
                {"chargePointVendor": "V", "chargePointModel": "M"},
            ]
        )
    )
    await asyncio.sleep(0.1)
    started = time.monotonic()
    beat = await fast.call("Heartbeat", {})
    fast_s = time.monotonic() - started
    boot = json.loads(await slow.receive_from(timeout=5))
    await slow.disconnect()
    await fast.disconnect()

    assert beat[0] == 3 and boot[0] == 3
    assert fast_s < 1.0, f"the fast charger waited {fast_s:.2f} s"


async def test_a_stop_sent_right_before_the_socket_closes_is_still_stored(
    charger_cp, connect
):
    import json

    charger = await connect()
    start = await charger.call(
        "StartTransaction",
        {
            "connectorId": 1,
            "idTag": "A",
            "meterStart": 0,
            "timestamp": "2025-01-01T10:00:00Z",
        },
    )

    await charger.send_to(
        text_data=json.dumps(
            [
                2,
                "last",
                "StopTransaction",
                {
                    "transactionId": start[2]["transactionId"],
                    "meterStop": 700,
                    "timestamp": "2025-01-01T10:30:00Z",
                },
            ]
        )
    )
    await charger.disconnect()

    session = await db(ChargingSession.objects.get)(pk=start[2]["transactionId"])
    assert session.meter_stop_wh == 700 and session.energy_wh == 700
