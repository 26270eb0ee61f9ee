"""The API issue's "done when", as a script would do it over real HTTP.

A script with a read-write API key, knowing only what /api/schema/ (the
document behind /api/docs/) says, lists today's sessions at a site, stops one
remotely (the charger is a strict ocpp-rpc client on a real socket to a Daphne
child process), and pulls tomorrow's forecast and the fleet insights.
"""

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.conftest import E2E_ID_TAG, wait_until

pytestmark = pytest.mark.integration

PATHS = {
    "sessions": "/api/sessions/",
    "session": "/api/sessions/{id}/",
    "stop": "/api/charge-points/{identity}/commands/RemoteStopTransaction/",
    "forecast": "/api/sites/{code}/forecast/",
    "insights": "/api/ml/fleet-insights/",
}


class Script:
    """What a script does: JSON over HTTP with ``Authorization: Api-Key ...``."""

    def __init__(self, base: str, key: str) -> None:
        self.base = base
        self.key = key

    def request(self, method: str, path: str, body: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - a test server on 127.0.0.1
            self.base + path, data=data, method=method
        )
        request.add_header("Authorization", f"Api-Key {self.key}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=40) as response:  # noqa: S310
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())


@pytest.fixture
def script(daphne_server):
    from api_access.models import ApiKey, ApiKeyScope

    _, key = ApiKey.objects.create_key(
        name="fleet script", scope=ApiKeyScope.READ_WRITE
    )
    return Script(daphne_server.http_url, key)


@pytest.fixture
def fleet_token(id_token):
    from sessions.models import Fleet, Vehicle

    fleet = Fleet.objects.create(name="E2E vans")
    vehicle = Vehicle.objects.create(name="Van 1", fleet=fleet)
    id_token.vehicle = vehicle
    id_token.save()
    return fleet


@pytest.fixture
def two_weeks_of_history(e2e_site):
    """A morning session of 10 kWh each day of the last two weeks, on another
    charger of the site: what the site's forecast baseline has to go on."""
    from sessions.models import ChargingSession
    from stations.models import ChargePoint

    charge_point = ChargePoint.objects.create(identity="E2E-OLD-1", site=e2e_site)
    today = datetime.now(UTC).replace(hour=8, minute=0, second=0, microsecond=0)
    for days in range(1, 15):
        start = today - timedelta(days=days)
        ChargingSession.objects.create(
            charge_point=charge_point,
            started_at=start,
            stopped_at=start + timedelta(hours=4),
            energy_wh=10_000,
        )


def test_a_script_lists_today_stops_one_and_reads_forecast_and_insights(
    script, make_charger, fleet_token, two_weeks_of_history
):
    # The script reads the documented API first, as a new user would.
    schema = json.loads(
        urllib.request.urlopen(  # noqa: S310
            f"{script.base}/api/schema/?format=json", timeout=10
        ).read()
    )
    for name, path in PATHS.items():
        assert path in schema["paths"], name
    documented = {
        p["name"] for p in schema["paths"][PATHS["sessions"]]["get"]["parameters"]
    }
    assert {"site", "started_after", "active"} <= documented
    assert "transactionId" in json.dumps(schema["paths"][PATHS["stop"]]["post"])

    # A charger at the site starts a session.
    charge_point, charger = make_charger("E2E-SCRIPT-1")
    assert charger.connect()["ok"]
    assert charger.boot()["status"] == "Accepted"
    started = charger.start_transaction(id_tag=E2E_ID_TAG, meter_start_wh=1000)
    transaction_id = started["transactionId"]
    assert started["idTagInfo"]["status"] == "Accepted"

    # 1. Today's sessions at the site (the site's local day; this one is UTC).
    midnight = datetime.now(UTC).strftime("%Y-%m-%dT00:00:00Z")
    status, body = script.request(
        "GET", f"{PATHS['sessions']}?site=e2e&started_after={midnight}&active=true"
    )
    assert status == 200, body
    assert [row["id"] for row in body["results"]] == [transaction_id]
    session = body["results"][0]
    assert session["charge_point"] == "E2E-SCRIPT-1"
    assert session["fleet"] == fleet_token.pk

    # 2. Stop it remotely; the charger answers and then ends the transaction.
    status, body = script.request(
        "POST",
        PATHS["stop"].format(identity=session["charge_point"]),
        {"transactionId": transaction_id},
    )
    assert status == 200, body
    assert body["outcome"] == "answered"
    assert body["response"] == {"status": "Accepted"}
    received = charger.wait_for_call("RemoteStopTransaction")
    assert received["params"] == {"transactionId": transaction_id}
    charger.stop_transaction(
        transaction_id=transaction_id, meter_stop_wh=8500, reason="Remote"
    )
    stopped = wait_until(
        lambda: (
            script.request("GET", PATHS["session"].format(id=transaction_id))[1][
                "is_active"
            ]
            is False
        ),
        timeout_s=10,
    )
    assert stopped
    status, body = script.request("GET", PATHS["session"].format(id=transaction_id))
    assert body["energy_wh"] == 7500
    assert body["stop_reason"] == "Remote"

    # 3. Tomorrow's forecast for the site: no trained model, so a labelled baseline.
    status, body = script.request(
        "GET", PATHS["forecast"].format(code="e2e") + "?hours=48"
    )
    assert status == 200, body
    assert body["is_baseline"] is True
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert body["tomorrow"]["day"] == tomorrow
    # Same hours a week before: the 10 kWh morning session.
    assert body["tomorrow"]["energy_kwh"] == pytest.approx(10, abs=0.01)

    # 4. Fleet insights for today: the van's one session and its energy.
    today = datetime.now(UTC).date().isoformat()
    status, body = script.request(
        "GET", f"{PATHS['insights']}?date_from={today}&date_to={today}"
    )
    assert status == 200, body
    (fleet,) = [f for f in body["fleets"] if f["fleet_id"] == fleet_token.pk]
    assert fleet["figures"]["sessions"] == 1
    assert fleet["figures"]["energy_kwh"] == pytest.approx(7.5)
    assert charger.strict_failures == []
