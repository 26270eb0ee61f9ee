"""POST /api/charge-points/<id>/commands/<action>/: each outcome of the command
service gets its status code and the error shape."""

from types import SimpleNamespace

import pytest

from ocpp_bridge.api import views
from ocpp_bridge.models import RemoteCommand

pytestmark = pytest.mark.django_db

STOP_URL = "/api/charge-points/CP-1/commands/RemoteStopTransaction/"


@pytest.fixture
def sent(monkeypatch):
    """Replace the command service with one that answers what the test says."""
    calls = []

    def answer_with(**result):
        def command_send(**kwargs):
            calls.append(kwargs)
            return SimpleNamespace(
                **{
                    "response": None,
                    "error_code": "",
                    "error_description": "",
                    "command_id": 41,
                    **result,
                }
            )

        monkeypatch.setattr(views, "command_send", command_send)
        return calls

    return answer_with


def test_the_chargers_answer_comes_back_with_200(read_write_api, charge_point, sent):
    calls = sent(outcome="answered", response={"status": "Accepted"})

    response = read_write_api.post(STOP_URL, {"transactionId": 7}, format="json")

    assert response.status_code == 200
    assert response.json() == {
        "action": "RemoteStopTransaction",
        "outcome": "answered",
        "command_id": 41,
        "response": {"status": "Accepted"},
    }
    assert calls[0]["charge_point"] == charge_point
    assert calls[0]["action"] == "RemoteStopTransaction"
    assert calls[0]["payload"] == {"transactionId": 7}


@pytest.mark.parametrize(
    ("result", "status", "reason_part"),
    [
        (
            {
                "outcome": "call_error",
                "error_code": "NotSupported",
                "error_description": "No remote stop here",
            },
            502,
            "CallError NotSupported",
        ),
        ({"outcome": "timeout"}, 504, "did not answer"),
        ({"outcome": "not_connected"}, 409, "is not connected"),
        (
            {
                "outcome": "invalid",
                "error_description": "'transactionId' is a required property",
            },
            400,
            "does not fit",
        ),
    ],
)
def test_each_failure_outcome_has_its_status_and_a_reason(
    read_write_api, charge_point, sent, result, status, reason_part
):
    sent(**result)

    response = read_write_api.post(STOP_URL, {"transactionId": 7}, format="json")

    assert response.status_code == status
    body = response.json()
    assert body["status"] == status
    assert body["code"] == result["outcome"]
    assert reason_part in body["reason"]
    assert body["command_id"] == 41
    if result["outcome"] == "call_error":
        assert body["error_code"] == "NotSupported"


def test_an_unknown_action_is_404_and_lists_the_known_ones(
    read_write_api, charge_point
):
    response = read_write_api.post(
        "/api/charge-points/CP-1/commands/SelfDestruct/", {}, format="json"
    )

    assert response.status_code == 404
    assert "SelfDestruct" in response.json()["reason"]
    assert "RemoteStopTransaction" in response.json()["reason"]


def test_an_unknown_charge_point_is_404(read_write_api, sent):
    sent(outcome="answered", response={})

    response = read_write_api.post(
        "/api/charge-points/NOPE/commands/Reset/", {"type": "Soft"}, format="json"
    )

    assert response.status_code == 404


def test_a_body_that_is_not_an_object_is_400(read_write_api, charge_point, sent):
    calls = sent(outcome="answered", response={})

    response = read_write_api.post(STOP_URL, [1, 2], format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert calls == []


def test_a_read_only_key_cannot_send_commands(read_only_api, charge_point, sent):
    calls = sent(outcome="answered", response={})

    response = read_only_api.post(STOP_URL, {"transactionId": 7}, format="json")

    assert response.status_code == 403
    assert calls == []


def test_a_staff_session_sends_as_the_staff_user(
    staff_api, staff_user, charge_point, sent
):
    calls = sent(outcome="answered", response={"status": "Accepted"})

    response = staff_api.post(STOP_URL, {"transactionId": 7}, format="json")

    assert response.status_code == 200
    assert calls[0]["requested_by"] == staff_user


def test_every_action_of_the_service_has_a_documented_endpoint(anonymous_api):
    paths = anonymous_api.get("/api/schema/", {"format": "json"}).json()["paths"]

    for action in views.ACTIONS:
        path = f"/api/charge-points/{{identity}}/commands/{action}/"
        assert path in paths, action
        post = paths[path]["post"]
        assert {"200", "400", "404", "409", "502", "504"} <= set(post["responses"])
        body = post["requestBody"]["content"]["application/json"]["schema"]
        answer = post["responses"]["200"]["content"]["application/json"]["schema"]
        assert answer["properties"]["action"]["enum"] == [action]
        assert body.get("type") == "object", action
    stop = paths["/api/charge-points/{identity}/commands/RemoteStopTransaction/"]
    body = stop["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["transactionId"]


@pytest.mark.django_db(transaction=True)
def test_a_disconnected_charger_gets_409_without_waiting(read_write_api, charge_point):
    # The real command service (its database work runs in another thread, so
    # the rows must be committed: a transactional test). No socket is open.
    response = read_write_api.post(STOP_URL, {"transactionId": 7}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "not_connected"
    command = RemoteCommand.objects.get(pk=response.json()["command_id"])
    assert command.action == "RemoteStopTransaction"
    assert command.outcome == "not_connected"


@pytest.mark.django_db(transaction=True)
def test_a_payload_outside_the_ocpp_schema_is_400_from_the_real_service(
    read_write_api, charge_point
):
    response = read_write_api.post(STOP_URL, {"transactionId": "seven"}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "transactionId" in response.json()["reason"]


def test_a_command_sent_with_an_api_key_is_recorded_with_that_key(
    read_write_api, read_write_key, charge_point, staff_client, transactional_db
):
    # The real command service: the charger is not connected, so the command
    # is recorded and refused at once (409) without waiting for an answer.
    response = read_write_api.post(STOP_URL, {"transactionId": 7}, format="json")

    assert response.status_code == 409
    command = RemoteCommand.objects.get(pk=response.json()["command_id"])
    assert command.requested_by_api_key == read_write_key[0]
    assert command.requested_by is None
    listing = staff_client.get("/admin/ocpp_bridge/remotecommand/")
    assert "API key automation" in listing.content.decode()


def test_a_command_sent_from_a_staff_session_is_recorded_with_the_user(
    staff_api, staff_user, charge_point, transactional_db
):
    response = staff_api.post(STOP_URL, {"transactionId": 7}, format="json")

    assert response.status_code == 409
    command = RemoteCommand.objects.get(pk=response.json()["command_id"])
    assert command.requested_by == staff_user
    assert command.requested_by_api_key is None
