"""Security profile 1 over a real socket: no socket opens without the password."""

import pytest

from tests.e2e.clients import OcppRpcCharger, run_test_ocpp

pytestmark = pytest.mark.integration


def _refused(result: dict) -> None:
    assert result["ok"] is False
    # Daphne has no ASGI HTTP-response extension: a denied handshake is a 403.
    assert result["error"]["statusCode"] in (401, 403), result


def test_charger_without_a_password_is_refused_before_the_socket_opens(
    make_charger, daphne_server, chargers
):
    from ocpp_bridge.models import ConnectionAttempt, Frame

    charge_point, _ = make_charger("E2E-AUTH-1")
    charger = OcppRpcCharger(
        identity="E2E-AUTH-1", url=daphne_server.ocpp_url, password=None
    )
    chargers.append(charger)

    _refused(charger.connect())

    assert not Frame.objects.filter(charge_point=charge_point).exists()
    attempt = ConnectionAttempt.objects.get(charge_point=charge_point)
    assert attempt.outcome == "refused"
    assert attempt.reason == "missing_password"


def test_charger_with_a_wrong_password_is_refused(
    make_charger, daphne_server, chargers
):
    from ocpp_bridge.models import ConnectionAttempt

    charge_point, good = make_charger("E2E-AUTH-2")
    charger = OcppRpcCharger(
        identity="E2E-AUTH-2", url=daphne_server.ocpp_url, password="x" * 24
    )
    chargers.append(charger)

    _refused(charger.connect())
    assert good.connect()["ok"]

    reasons = list(
        ConnectionAttempt.objects.filter(charge_point=charge_point)
        .order_by("created_at")
        .values_list("outcome", "reason")
    )
    assert reasons[0] == ("refused", "bad_password")
    assert reasons[-1][0] == "accepted"
    charge_point.refresh_from_db()
    assert charge_point.password_hash
    assert "x" * 24 not in charge_point.password_hash


def test_unknown_charger_is_refused(daphne_server, chargers, e2e_site):
    charger = OcppRpcCharger(
        identity="E2E-NOBODY", url=daphne_server.ocpp_url, password="y" * 20
    )
    chargers.append(charger)

    _refused(charger.connect())


def test_test_ocpp_client_with_a_wrong_password_fails(make_charger):
    _, charger = make_charger("E2E-AUTH-3")

    code, output = run_test_ocpp(
        url=charger.url.rstrip("/"), identity="E2E-AUTH-3", password="z" * 20
    )

    assert code != 0
    assert "SUCCESS" not in output
