"""Remote commands over a real socket: sent here, answered by an ocpp-rpc charger.

`command_send` runs in the test process; the charger's socket is held by a
Daphne child process; the command crosses the Redis channel layer, the strict
ocpp-rpc client checks the CALL against the OCPP 1.6 schema and answers, and
the answer comes back. Schema-valid answers are the Node peer's defaults
(tests/e2e/peers/charger.js).
"""

import asyncio
import http.cookiejar
import os
import re
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.clients import now_z
from tests.e2e.conftest import E2E_ID_TAG, wait_until

pytestmark = pytest.mark.integration


def _in_an_hour() -> str:
    return (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


# One valid payload per command the portal sends (OCPP 1.6 §6), and the answer
# the charger gives (charger.js defaults).
COMMANDS: dict[str, tuple[dict, dict]] = {
    "RemoteStartTransaction": (
        {"idTag": E2E_ID_TAG, "connectorId": 1},
        {"status": "Accepted"},
    ),
    "RemoteStopTransaction": ({"transactionId": 1}, {"status": "Accepted"}),
    "Reset": ({"type": "Soft"}, {"status": "Accepted"}),
    "UnlockConnector": ({"connectorId": 1}, {"status": "Unlocked"}),
    "ChangeAvailability": (
        {"connectorId": 0, "type": "Inoperative"},
        {"status": "Accepted"},
    ),
    "ChangeConfiguration": (
        {"key": "HeartbeatInterval", "value": "120"},
        {"status": "Accepted"},
    ),
    "GetConfiguration": (
        {"key": ["HeartbeatInterval", "NoSuchKey"]},
        {
            "configurationKey": [
                {"key": "HeartbeatInterval", "readonly": False, "value": "300"}
            ],
            "unknownKey": ["NoSuchKey"],
        },
    ),
    "ClearCache": ({}, {"status": "Accepted"}),
    "TriggerMessage": (
        {"requestedMessage": "Heartbeat"},
        {"status": "Accepted"},
    ),
    "DataTransfer": (
        {"vendorId": "org.giu", "messageId": "ping", "data": "hello"},
        {"status": "Accepted", "data": "hello"},
    ),
    "UpdateFirmware": (
        {"location": "https://firmware.example/fw-2.bin", "retrieveDate": None},
        {},
    ),
    "GetDiagnostics": (
        {"location": "ftp://diagnostics.example/upload/"},
        {"fileName": "diagnostics.log"},
    ),
    "SendLocalList": (
        {
            "listVersion": 2,
            "updateType": "Full",
            "localAuthorizationList": [
                {"idTag": E2E_ID_TAG, "idTagInfo": {"status": "Accepted"}}
            ],
        },
        {"status": "Accepted"},
    ),
    "GetLocalListVersion": ({}, {"listVersion": 1}),
    "ReserveNow": (
        {
            "connectorId": 1,
            "expiryDate": None,
            "idTag": E2E_ID_TAG,
            "reservationId": 7,
        },
        {"status": "Accepted"},
    ),
    "CancelReservation": ({"reservationId": 7}, {"status": "Accepted"}),
    "SetChargingProfile": (
        {
            "connectorId": 1,
            "csChargingProfiles": {
                "chargingProfileId": 11,
                "stackLevel": 0,
                "chargingProfilePurpose": "TxDefaultProfile",
                "chargingProfileKind": "Absolute",
                "chargingSchedule": {
                    "chargingRateUnit": "W",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7400.0}],
                },
            },
        },
        {"status": "Accepted"},
    ),
    "ClearChargingProfile": ({"id": 11}, {"status": "Accepted"}),
    "GetCompositeSchedule": (
        {"connectorId": 1, "duration": 3600, "chargingRateUnit": "W"},
        None,  # echoes the request; checked below
    ),
}


def _payload(action: str) -> dict:
    payload = dict(COMMANDS[action][0])
    for key in ("retrieveDate", "expiryDate"):
        if key in payload:
            payload[key] = _in_an_hour()
    return payload


def _connected(make_charger, identity: str, **kwargs):
    charge_point, charger = make_charger(identity, **kwargs)
    assert charger.connect()["ok"]
    assert charger.boot()["status"] == "Accepted"
    charge_point.refresh_from_db()
    assert charge_point.is_connected
    return charge_point, charger


def test_every_command_the_portal_sends_is_answered(make_charger):
    from ocpp_bridge.commands import ACTIONS, command_send
    from ocpp_bridge.models import RemoteCommand

    assert set(COMMANDS) == set(ACTIONS)
    charge_point, charger = _connected(make_charger, "E2E-CMD-1")

    for action in COMMANDS:
        payload = _payload(action)
        result = command_send(charge_point=charge_point, action=action, payload=payload)
        received = charger.wait_for_call(action)
        assert received["params"] == payload, action
        expected = COMMANDS[action][1]
        if expected is None:
            expected = {**result.response, "connectorId": 1, "status": "Accepted"}
        assert result.outcome == "answered", (action, result)
        assert result.response == expected, action
        command = RemoteCommand.objects.get(pk=result.command_id)
        assert command.outcome == "answered"
        assert command.response == expected
        assert command.latency_ms is not None

    assert charger.strict_failures == [], charger.strict_failures
    assert len(charger.received_calls()) == len(COMMANDS)


def test_a_call_error_from_the_charger_comes_back_as_call_error(make_charger):
    from ocpp_bridge.commands import command_send
    from ocpp_bridge.models import RemoteCommand

    charge_point, charger = _connected(make_charger, "E2E-CMD-2")
    charger.handle("Reset", error="NotSupported", description="no soft reset here")

    result = command_send(
        charge_point=charge_point, action="Reset", payload={"type": "Soft"}
    )

    assert result.outcome == "call_error"
    assert result.error_code == "NotSupported"
    assert "no soft reset" in result.error_description
    assert RemoteCommand.objects.get(pk=result.command_id).error_code == "NotSupported"
    assert charger.strict_failures == []


def test_a_charger_that_does_not_answer_in_time_gives_a_timeout(make_charger):
    from ocpp_bridge.commands import command_send

    charge_point, charger = _connected(make_charger, "E2E-CMD-3")
    charger.handle("ClearCache", response={"status": "Accepted"}, delayMs=4000)

    result = command_send(
        charge_point=charge_point, action="ClearCache", payload={}, timeout_s=1
    )

    assert result.outcome == "timeout"
    charger.wait_for_call("ClearCache")


def test_a_charger_that_is_not_connected_is_told_at_once(make_charger):
    from ocpp_bridge.commands import command_send

    charge_point, _ = make_charger("E2E-CMD-4")

    started = time.monotonic()
    result = command_send(
        charge_point=charge_point, action="Reset", payload={"type": "Hard"}
    )

    assert result.outcome == "not_connected"
    # "Without waiting": far below the 30 s command timeout.
    assert time.monotonic() - started < 5


def test_an_invalid_payload_is_refused_before_it_is_sent(make_charger):
    from ocpp_bridge.commands import command_send

    charge_point, charger = _connected(make_charger, "E2E-CMD-5")

    result = command_send(
        charge_point=charge_point, action="Reset", payload={"type": "Gentle"}
    )

    assert result.outcome == "invalid"
    assert charger.received_calls("Reset") == []


def _start_transaction(charger) -> int:
    charger.call(
        "StatusNotification",
        {"connectorId": 1, "errorCode": "NoError", "status": "Preparing"},
    )
    started = charger.call(
        "StartTransaction",
        {
            "connectorId": 1,
            "idTag": E2E_ID_TAG,
            "meterStart": 500,
            "timestamp": now_z(),
        },
    )
    return started["transactionId"]


def test_remote_stop_from_the_station_page_button_stops_the_session(
    make_charger, id_token, staff_client
):
    from sessions.models import ChargingSession

    charge_point, charger = _connected(make_charger, "E2E-STOP-1")
    transaction_id = _start_transaction(charger)

    response = staff_client.post(
        f"/stations/{charge_point.identity}/commands/RemoteStopTransaction/",
        {"transactionId": str(transaction_id)},
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 200
    assert "Accepted" in response.content.decode()
    remote_stop = charger.wait_for_call("RemoteStopTransaction")
    assert remote_stop["params"] == {"transactionId": transaction_id}
    # What a charger does next (OCPP 1.6 §5.12): stop, with reason Remote.
    charger.stop_transaction(
        transaction_id=transaction_id, meter_stop_wh=2500, reason="Remote"
    )
    session = ChargingSession.objects.get(pk=transaction_id)
    assert session.stopped_at is not None
    assert session.stop_reason == "Remote"
    assert session.energy_wh == 2000
    assert charger.strict_failures == []


def test_station_page_button_needs_the_send_permission(make_charger, operator_client):
    charge_point, charger = _connected(make_charger, "E2E-STOP-2")

    response = operator_client.post(
        f"/stations/{charge_point.identity}/commands/Reset/", {"type": "Hard"}
    )

    assert response.status_code == 403
    assert charger.received_calls() == []


# --- across processes -------------------------------------------------------------


def _logged_in_opener(base_url: str, username: str, password: str):
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base_url}/admin/login/").read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode(
        {
            "csrfmiddlewaretoken": token,
            "username": username,
            "password": password,
            "next": "/admin/",
        }
    ).encode()
    opener.open(
        urllib.request.Request(  # noqa: S310 (http to our own child)
            f"{base_url}/admin/login/",
            data=form,
            headers={"Referer": f"{base_url}/admin/login/"},
        )
    )
    csrf = next(c.value for c in jar if c.name == "csrftoken")
    return opener, csrf


def test_station_page_button_on_one_daphne_reaches_a_charger_on_another(
    make_charger, staff_user, daphne_server, second_daphne_server
):
    charge_point, charger = _connected(
        make_charger, "E2E-XPROC-1", server=second_daphne_server
    )
    opener, csrf = _logged_in_opener(daphne_server.http_url, "staff", "staff-pass-1")

    answer = opener.open(
        urllib.request.Request(  # noqa: S310 (http to our own child)
            f"{daphne_server.http_url}/stations/E2E-XPROC-1/commands/UnlockConnector/",
            data=urllib.parse.urlencode({"connectorId": "1"}).encode(),
            headers={
                "X-CSRFToken": csrf,
                "HX-Request": "true",
                "Referer": f"{daphne_server.http_url}/",
            },
        ),
        timeout=40,
    )

    assert answer.status == 200
    assert "Unlocked" in answer.read().decode()
    assert charger.wait_for_call("UnlockConnector")["params"] == {"connectorId": 1}


BURST = int(os.environ.get("E2E_BURST", "150"))  # > channels_redis' default 100
# Each command is one round trip through Redis, Daphne and the charger, one at a
# time per charger (OCPP-J): 150 took about 20 s on a quiet machine and over a
# minute on a loaded one, so the last in the queue may wait that long. Bounds,
# not timings.
BURST_COMMAND_TIMEOUT_S = 200
BURST_BOUND_S = 240


async def test_a_burst_of_commands_to_another_process_loses_none(
    make_charger, second_daphne_server
):
    from channels.db import database_sync_to_async

    from ocpp_bridge.commands import command_send_async
    from ocpp_bridge.models import RemoteCommand

    charge_point, charger = await database_sync_to_async(_connected)(
        make_charger, "E2E-BURST-1", server=second_daphne_server
    )

    results = await asyncio.wait_for(
        asyncio.gather(
            *(
                command_send_async(
                    charge_point=charge_point,
                    action="DataTransfer",
                    payload={"vendorId": "org.giu", "data": str(i)},
                    timeout_s=BURST_COMMAND_TIMEOUT_S,
                )
                for i in range(BURST)
            )
        ),
        BURST_BOUND_S,
    )

    outcomes = [r.outcome for r in results]
    assert outcomes == ["answered"] * BURST, {o: outcomes.count(o) for o in outcomes}
    assert [r.response["data"] for r in results] == [str(i) for i in range(BURST)]
    received = await asyncio.to_thread(
        wait_until, lambda: len(charger.received_calls("DataTransfer")) >= BURST
    )
    assert received
    assert sorted(int(c["params"]["data"]) for c in charger.received_calls()) == list(
        range(BURST)
    )
    count = await database_sync_to_async(
        RemoteCommand.objects.filter(
            charge_point=charge_point, outcome="answered"
        ).count
    )()
    assert count == BURST
    assert charger.strict_failures == []
