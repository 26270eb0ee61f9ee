"""The charger handshake: auth, rate limit, subprotocol, ids, replacement."""

import asyncio
import base64

from channels.db import database_sync_to_async as db

from ocpp_bridge.commands import command_send_async
from ocpp_bridge.models import ConnectionAttempt, Frame
from stations.models import ChargePoint, RegistrationStatus
from tests.ocpp_bridge.conftest import PASSWORD, Charger, answer_next


async def reasons() -> list[tuple[str, str]]:
    return await db(
        lambda: list(
            ConnectionAttempt.objects.order_by("id").values_list("outcome", "reason")
        )
    )()


async def test_missing_or_wrong_credentials_are_refused_before_the_socket_opens(
    charger_cp, connect
):
    missing = await connect(password=None)
    wrong = await connect(password="not-the-password-at-all")
    other_user = await connect(user="CP-2")
    garbled = await connect(
        password=None, headers=[(b"authorization", b"Basic %%%not-base64")]
    )
    right = await connect()

    assert [c.connected for c in (missing, wrong, other_user, garbled)] == [False] * 4
    assert right.connected and right.detail == "ocpp1.6"
    await right.disconnect()
    assert await reasons() == [
        ("refused", "missing_password"),
        ("refused", "bad_password"),
        ("refused", "user_mismatch"),
        ("refused", "malformed_authorization"),
        ("accepted", ""),
    ]
    charge_point = await db(ChargePoint.objects.get)(identity="CP-1")
    assert charge_point.last_connect_error == ""  # cleared by the good connection
    assert not await db(Frame.objects.exists)()  # nothing reached the consumer


async def test_repeated_failures_from_one_address_are_rate_limited(
    charger_cp, connect, settings
):
    settings.OCPP_AUTH_FAILURE_LIMIT = 3

    for _ in range(3):
        assert not (await connect(password="wrong-password-12345")).connected
    blocked = await connect()
    elsewhere = await connect(client=("10.0.0.99", 4000))

    assert not blocked.connected
    assert elsewhere.connected
    await elsewhere.disconnect()
    assert (await reasons())[3] == ("refused", "rate_limited")


async def test_ocpp16_is_negotiated_and_other_protocols_refused(charger_cp, connect):
    both = await connect(subprotocols=("ocpp2.0.1", "ocpp1.6"))
    await both.disconnect()
    only_201 = await connect(subprotocols=("ocpp2.0.1",))

    assert both.connected and both.detail == "ocpp1.6"
    assert not only_201.connected
    assert (await reasons())[-1] == ("refused", "unsupported_subprotocol")


async def test_encoded_ids_and_a_trailing_slash_find_the_same_charger(
    make_charger, connect
):
    await db(make_charger)("ACME/7 west")
    await db(make_charger)("CP-9")

    served = []
    for identity, path in (
        ("ACME/7 west", "/ocpp/ACME%2F7%20west"),
        ("CP-9", "/ocpp/CP-9/"),
        ("CP-9", "/ocpp/cp-9"),
    ):
        charger = await connect(identity, path=path)
        served.append(charger.connected and (await charger.call("Heartbeat", {}))[0])
        await charger.disconnect()
    double = await connect("ACME/7 west", path="/ocpp/ACME%252F7%2520west")

    assert served == [3, 3, 3]
    assert not double.connected  # decoded once only: 'ACME%2F7%20west' is unknown
    identities = await db(
        lambda: list(
            ConnectionAttempt.objects.order_by("id").values_list("identity", flat=True)
        )
    )()
    assert identities == ["ACME/7 west", "CP-9", "cp-9", "ACME%2F7%20west"]
    heartbeats = await db(
        Frame.objects.filter(charge_point__identity="CP-9", action="Heartbeat").count
    )()
    assert heartbeats == 4  # both connections were served as CP-9 (2 in, 2 out)


async def test_a_second_connection_replaces_the_first(charger_cp, connect):
    first = await connect()
    second = await connect()

    closed = await first.receive_output(timeout=2)
    assert closed == {"type": "websocket.close", "code": 4000}
    await first.disconnect()
    charge_point = await db(ChargePoint.objects.get)(identity="CP-1")
    assert charge_point.is_connected  # the old socket's end did not mark it offline

    command = asyncio.create_task(
        command_send_async(
            charge_point=charge_point, action="ClearCache", payload={}, timeout_s=5
        )
    )
    call = await answer_next(second, {"status": "Accepted"})
    result = await command

    assert call[2] == "ClearCache"
    assert result.outcome == "answered" and result.response == {"status": "Accepted"}
    assert await first.receive_nothing(timeout=0.2)
    await second.disconnect()
    charge_point = await db(ChargePoint.objects.get)(identity="CP-1")
    assert not charge_point.is_connected


async def test_unknown_chargers_are_refused_or_registered_pending(
    tdb, site_utc, connect, settings
):
    refused = await connect("NEW-1", password=None)
    assert not refused.connected
    assert not await db(ChargePoint.objects.filter(identity="NEW-1").exists)()

    settings.OCPP_UNKNOWN_CHARGE_POINTS = "pending"
    settings.OCPP_REQUIRE_PASSWORD = False
    pending = await connect("NEW-1", password=None)
    boot = await pending.call(
        "BootNotification", {"chargePointVendor": "X", "chargePointModel": "Y"}
    )
    await pending.disconnect()

    assert boot[2]["status"] == "Pending"
    charge_point = await db(ChargePoint.objects.select_related("site").get)(
        identity="NEW-1"
    )
    assert charge_point.registration_status == RegistrationStatus.PENDING
    assert charge_point.site.code == "unassigned"


async def test_a_charger_without_password_follows_the_setting(
    make_charger, connect, settings
):
    await db(make_charger)("OPEN-1", password=None)

    settings.OCPP_REQUIRE_PASSWORD = True
    refused = await connect("OPEN-1", password=None)
    settings.OCPP_REQUIRE_PASSWORD = False
    allowed = await connect("OPEN-1", password=None)

    assert not refused.connected and allowed.connected
    await allowed.disconnect()
    assert (await reasons())[0] == ("refused", "no_password_set")


async def test_a_password_with_colons_and_binary_bytes_is_compared_as_sent(
    make_charger, tdb
):
    from stations.services import charge_point_password_set

    charge_point = await db(make_charger)("BIN-1", password=None)
    odd = "pa:ss:wörd-1234567"
    await db(charge_point_password_set)(charge_point=charge_point, password=odd)
    header = b"Basic: " + base64.b64encode(b"BIN-1:" + odd.encode("utf-8"))

    charger = Charger("/ocpp/BIN-1", headers=[(b"authorization", header)])
    connected, _ = await charger.connect(timeout=5)
    wrong = Charger(
        "/ocpp/BIN-1",
        headers=[(b"authorization", b"Basic " + base64.b64encode(b"BIN-1:pa"))],
    )
    refused, _ = await wrong.connect(timeout=5)

    assert connected and not refused
    await charger.disconnect()


def test_add_charge_point_prints_its_password_once(site_utc, capsys):
    from django.core.management import call_command

    from stations.services import charge_point_password_check

    call_command("add_charge_point", "CLI-1", "--site", "Depot")

    output = capsys.readouterr().out
    password = output.split("Password (shown once): ")[1].strip()
    charge_point = ChargePoint.objects.get(identity="CLI-1")
    assert 16 <= len(password) <= 40
    assert password not in charge_point.password_hash
    assert charge_point_password_check(charge_point=charge_point, password=password)
    assert PASSWORD != password
