"""A third-party charger runs a whole transaction against a real Daphne process.

The charger is the npm `ocpp-rpc` client in strict mode: every answer the
portal gives is checked against the official OCPP 1.6 JSON schemas.
"""

import re

import pytest

from tests.e2e.clients import now_z, run_test_ocpp
from tests.e2e.conftest import E2E_ID_TAG, wait_until

pytestmark = pytest.mark.integration

Z_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def _meter_value(register_wh: int, power_w: int) -> dict:
    return {
        "timestamp": now_z(),
        "sampledValue": [
            {
                "value": str(register_wh),
                "context": "Sample.Periodic",
                "measurand": "Energy.Active.Import.Register",
                "unit": "Wh",
            },
            {
                "value": str(power_w),
                "context": "Sample.Periodic",
                "measurand": "Power.Active.Import",
                "unit": "W",
            },
        ],
    }


def run_full_transaction(charger) -> int:
    """Boot, status, authorize, start, three meter values, stop; the tx id."""
    assert charger.connect()["ok"]
    boot = charger.boot()
    assert boot["status"] == "Accepted"
    assert Z_TIME.match(boot["currentTime"])
    charger.call(
        "StatusNotification",
        {"connectorId": 0, "errorCode": "NoError", "status": "Available"},
    )
    charger.call(
        "StatusNotification",
        {
            "connectorId": 1,
            "errorCode": "NoError",
            "status": "Preparing",
            "timestamp": now_z(),
        },
    )
    # idTags match without regard to case (OCPP 1.6 IdToken is case-insensitive).
    authorized = charger.call("Authorize", {"idTag": E2E_ID_TAG.lower()})
    assert authorized["idTagInfo"]["status"] == "Accepted"
    started = charger.start_transaction(id_tag=E2E_ID_TAG, meter_start_wh=1000)
    assert started["idTagInfo"]["status"] == "Accepted"
    transaction_id = started["transactionId"]
    charger.call(
        "StatusNotification",
        {"connectorId": 1, "errorCode": "NoError", "status": "Charging"},
    )
    for register_wh in (1500, 2500, 3600):
        charger.call(
            "MeterValues",
            {
                "connectorId": 1,
                "transactionId": transaction_id,
                "meterValue": [_meter_value(register_wh, 7200)],
            },
        )
    stopped = charger.call(
        "StopTransaction",
        {
            "transactionId": transaction_id,
            "idTag": E2E_ID_TAG,
            "meterStop": 4200,
            "timestamp": now_z(),
            "reason": "EVDisconnected",
            "transactionData": [_meter_value(4200, 0)],
        },
    )
    assert stopped["idTagInfo"]["status"] == "Accepted"
    charger.call(
        "StatusNotification",
        {"connectorId": 1, "errorCode": "NoError", "status": "Available"},
    )
    return transaction_id


def test_full_transaction_is_stored_with_its_energy(make_charger, id_token):
    from ocpp_bridge.models import Frame
    from sessions.models import ChargingSession, MeterSample

    charge_point, charger = make_charger("E2E-TX-1")

    transaction_id = run_full_transaction(charger)
    summary = charger.close()

    assert charger.strict_failures == []
    assert summary["callsSent"] == summary["callsAnswered"] == 11
    session = ChargingSession.objects.get(pk=transaction_id)
    assert session.charge_point_id == charge_point.pk
    assert session.id_token_id == id_token.pk
    assert session.meter_start_wh == 1000
    assert session.meter_stop_wh == 4200
    assert session.energy_wh == 3200
    assert session.stopped_at is not None
    assert session.stop_reason == "EVDisconnected"
    energy = MeterSample.objects.filter(
        session=session, measurand="Energy.Active.Import.Register"
    ).order_by("timestamp")
    assert [s.value for s in energy] == [1500, 2500, 3600, 4200]
    assert MeterSample.objects.filter(session=session).count() == 8
    # Every frame in and every answer out is in the frame log.
    inbound = Frame.objects.filter(charge_point=charge_point, direction="in")
    outbound = Frame.objects.filter(charge_point=charge_point, direction="out")
    assert inbound.count() == outbound.count() == 11
    assert set(inbound.values_list("action", flat=True)) == {
        "BootNotification",
        "StatusNotification",
        "Authorize",
        "StartTransaction",
        "MeterValues",
        "StopTransaction",
    }
    charge_point.refresh_from_db()
    assert charge_point.vendor == "GIU-e2e"
    assert charge_point.model == "ocpp-rpc"
    assert charge_point.connectors.get(number=1).status == "Available"
    assert wait_until(
        lambda: not type(charge_point).objects.get(pk=charge_point.pk).is_connected
    )


def test_energy_appears_on_the_station_page(make_charger, id_token, operator_client):
    from django.urls import NoReverseMatch, reverse

    try:
        url = reverse("station_detail", args=["E2E-PAGE-1"])
    except NoReverseMatch:
        pytest.skip("the station page (pages helper) is not on this branch yet")
    charge_point, charger = make_charger("E2E-PAGE-1")
    transaction_id = run_full_transaction(charger)
    charger.close()

    page = operator_client.get(url)

    assert page.status_code == 200
    text = page.content.decode()
    assert "E2E-PAGE-1" in text
    # 3,200 Wh delivered: shown in kWh as the pages do.
    assert re.search(r"3[.,]2\d*\s*kWh", text), text[:3000]
    assert str(transaction_id) in text


def test_test_ocpp_smoke_client_boots_and_heartbeats(make_charger):
    charge_point, charger = make_charger("E2E-SMOKE-1")

    code, output = run_test_ocpp(
        url=charger.url.rstrip("/"), identity="E2E-SMOKE-1", password=charger.password
    )

    assert code == 0, output
    assert "SUCCESS" in output
    from ocpp_bridge.models import Frame

    actions = set(
        Frame.objects.filter(charge_point=charge_point, direction="in").values_list(
            "action", flat=True
        )
    )
    assert {"BootNotification", "Heartbeat"} <= actions
