"""Frame log and command views, admin tools, live feed, offline and prune tasks."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import ThreadSensitiveContext
from channels.db import database_sync_to_async as db
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from ocpp_bridge.models import Frame, RemoteCommand
from ocpp_bridge.routing import websocket_urlpatterns
from ocpp_bridge.tasks import charge_points_offline_check, frames_prune
from stations.models import Alert, AlertKind, ChargePoint
from stations.services import charge_point_password_check


def _frame(charge_point, **fields):
    defaults = {
        "identity": charge_point.identity,
        "direction": "in",
        "message_type": 2,
        "action": "Heartbeat",
        "raw": '[2,"1","Heartbeat",{}]',
        "created_at": timezone.now(),
    }
    return Frame.objects.create(charge_point=charge_point, **{**defaults, **fields})


def test_the_frame_log_filters_per_charger(operator_client, charge_point, site):
    other = ChargePoint.objects.create(identity="CP-OTHER", site=site)
    _frame(charge_point, message_id="a1", action="Heartbeat")
    _frame(charge_point, message_id="a2", action="MeterValues", direction="out")
    _frame(charge_point, message_id="a3", raw="nope", action="", flags=["not_json"])
    _frame(other, message_id="zz", action="Heartbeat")
    url = reverse("ocpp_frame_log", args=[charge_point.identity])

    page = operator_client.get(url)
    inbound = operator_client.get(url, {"direction": "in"}, HTTP_HX_REQUEST="true")
    errors = operator_client.get(url, {"errors": "1"}, HTTP_HX_REQUEST="true")
    metered = operator_client.get(
        url, {"action": "MeterValues"}, HTTP_HX_REQUEST="true"
    )

    assert page.status_code == 200 and "<html" in page.content.decode()
    ids = lambda response: [f.message_id for f in response.context["page"]]  # noqa: E731
    assert sorted(ids(page)) == ["a1", "a2", "a3"]
    assert sorted(ids(inbound)) == ["a1", "a3"]
    assert ids(errors) == ["a3"] and ids(metered) == ["a2"]
    assert "<html" not in inbound.content.decode()


def test_the_frame_log_needs_a_login(client, charge_point):
    response = client.get(reverse("ocpp_frame_log", args=[charge_point.identity]))

    assert response.status_code == 302


def test_only_users_with_the_permission_send_commands(
    client, operator_user, staff_user, charge_point, transactional_db
):
    url = reverse("ocpp_command", args=[charge_point.identity, "Reset"])
    client.force_login(operator_user)
    refused = client.post(url, {"type": "Soft"})

    operator_user.user_permissions.add(Permission.objects.get(codename="send_command"))
    client.force_login(operator_user)
    sent = client.post(url, {"type": "Soft"}, HTTP_HX_REQUEST="true")
    bad = client.post(url, {"type": "Sideways"}, HTTP_HX_REQUEST="true")

    assert refused.status_code == 403
    assert sent.status_code == 200 and "not connected" in sent.content.decode()
    assert bad.status_code == 400
    assert list(RemoteCommand.objects.values_list("outcome", flat=True)) == [
        "not_connected"
    ]
    assert RemoteCommand.objects.get().requested_by == operator_user


async def test_the_station_page_button_reaches_the_charger(
    async_client, staff_user, charger_cp, connect
):
    await async_client.aforce_login(staff_user)
    charger = await connect()
    url = reverse("ocpp_command", args=["CP-1", "RemoteStopTransaction"])

    async def post():
        # As under Daphne (ASGIHandler): the sync view gets its own thread.
        async with ThreadSensitiveContext():
            return await async_client.post(
                url, {"transactionId": "41"}, headers={"HX-Request": "true"}
            )

    posting = asyncio.ensure_future(post())
    call = await charger.receive_json_from(timeout=5)
    await charger.send_json_to([3, call[1], {"status": "Accepted"}])
    response = await posting
    await charger.disconnect()

    assert call[2:] == ["RemoteStopTransaction", {"transactionId": 41}]
    assert response.status_code == 200 and "Accepted" in response.content.decode()


def test_commands_partial_renders_for_the_station_page(rf, staff_user, charge_point):
    from django.template import Context, Template

    request = rf.get("/")
    request.user = staff_user
    html = Template("{% load ocpp_bridge %}{% ocpp_commands cp %}").render(
        Context({"cp": charge_point, "request": request, "csrf_token": "t"})
    )

    assert html.count("<form") == 19
    assert reverse("ocpp_command", args=["CP-1", "UnlockConnector"]) in html


def test_admin_generates_a_password_shown_once(staff_client, charge_point):
    url = reverse("admin:stations_chargepoint_password", args=[charge_point.pk])

    confirm = staff_client.get(url)
    generated = staff_client.post(url)
    password = generated.context["password"]
    charge_point.refresh_from_db()
    change = staff_client.get(
        reverse("admin:stations_chargepoint_change", args=[charge_point.pk])
    )

    assert confirm.status_code == 200 and confirm.context["password"] is None
    assert 16 <= len(password) <= 40
    assert charge_point_password_check(charge_point=charge_point, password=password)
    assert password not in change.content.decode()


def test_admin_sets_a_typed_password_and_lists_frames(staff_client, charge_point):
    url = reverse("admin:stations_chargepoint_change", args=[charge_point.pk])
    data = {
        "identity": "CP-1",
        "site": charge_point.site_id,
        "protocol": "ocpp1.6",
        "registration_status": "Accepted",
        "energy_scale": "1.0",
        "new_password": "typed-by-staff-0001",
        "connectors-TOTAL_FORMS": "0",
        "connectors-INITIAL_FORMS": "0",
    }
    _frame(charge_point, message_id="f1")

    saved = staff_client.post(url, data)
    frames = staff_client.get(
        reverse("admin:ocpp_bridge_frame_changelist"),
        {"charge_point__id__exact": charge_point.pk},
    )

    assert saved.status_code == 302, saved.context["adminform"].form.errors
    charge_point.refresh_from_db()
    assert charge_point_password_check(
        charge_point=charge_point, password="typed-by-staff-0001"
    )
    filtered = staff_client.get(
        reverse("admin:ocpp_bridge_frame_changelist"),
        {"action": "MeterValues", "error_code": "ProtocolError"},
    )
    assert frames.status_code == 200 and "f1" in frames.content.decode()
    assert filtered.status_code == 200 and "f1" not in filtered.content.decode()


def test_offline_task_marks_silent_chargers_and_alerts(charge_point, settings):
    settings.OCPP_HEARTBEAT_INTERVAL_S = 60
    long_ago = timezone.now() - timedelta(minutes=10)
    ChargePoint.objects.filter(pk=charge_point.pk).update(
        is_connected=True, last_seen_at=long_ago
    )

    first = charge_points_offline_check.delay().get()
    ChargePoint.objects.filter(pk=charge_point.pk).update(
        is_connected=True, last_seen_at=timezone.now()
    )
    second = charge_points_offline_check.delay().get()

    assert first == {"marked_offline": 1, "alerts_resolved": 0}
    assert second == {"marked_offline": 0, "alerts_resolved": 1}
    alert = Alert.objects.get(kind=AlertKind.CHARGER_OFFLINE)
    assert alert.subject == "CP-1" and alert.resolved_at is not None


def test_frames_are_pruned_after_the_retention_period(charge_point, settings):
    settings.OCPP_FRAME_RETENTION_DAYS = 7
    _frame(
        charge_point, message_id="old", created_at=datetime.now(UTC) - timedelta(days=8)
    )
    _frame(charge_point, message_id="new")

    deleted = frames_prune.delay().get()

    assert deleted == 1
    assert list(Frame.objects.values_list("message_id", flat=True)) == ["new"]


@pytest.mark.parametrize("logged_in", [True, False])
async def test_live_feed_forwards_charger_events_to_logged_in_pages(
    charger_cp, connect, staff_user, logged_in, client
):
    from django.conf import settings as django_settings
    from django.contrib.sessions.backends.db import SessionStore

    headers = [(b"origin", b"http://localhost")]
    if logged_in:
        await db(client.force_login)(staff_user)
        cookie = client.cookies[django_settings.SESSION_COOKIE_NAME].value
        assert await db(SessionStore(cookie).exists)(cookie)
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    page = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/live/", headers)
    connected, _ = await page.connect(timeout=5)

    if not logged_in:
        assert not connected
        return
    charger = await connect()
    await charger.call(
        "StatusNotification",
        {"connectorId": 1, "errorCode": "NoError", "status": "Charging"},
    )
    events = [await page.receive_json_from(timeout=2) for _ in range(2)]
    await charger.disconnect()
    await page.disconnect()

    assert events[0] == {"charge_point": "CP-1", "event": "connected"}
    assert events[1]["event"] == "status" and events[1]["status"] == "Charging"


async def test_live_pages_get_the_newest_meter_values_once_a_second(
    charger_cp, connect, staff_user, client
):
    from django.conf import settings as django_settings

    await db(client.force_login)(staff_user)
    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    headers = [
        (b"origin", b"http://localhost"),
        (b"cookie", f"sessionid={cookie}".encode()),
    ]
    page = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/live/", headers)
    assert (await page.connect(timeout=5))[0]
    charger = await connect()
    assert (await page.receive_json_from(timeout=2))["event"] == "connected"

    for minute in (1, 2, 3):
        await charger.call(
            "MeterValues",
            {
                "connectorId": 1,
                "meterValue": [
                    {
                        "timestamp": f"2025-05-01T08:0{minute}:00Z",
                        "sampledValue": [{"value": str(1000 * minute)}],
                    }
                ],
            },
        )
    event = await page.receive_json_from(timeout=3)
    nothing_more = await page.receive_nothing(timeout=1.5)
    await charger.disconnect()
    await page.disconnect()

    assert event == {
        "charge_point": "CP-1",
        "event": "meter_values",
        "connector": 1,
        "session": None,
    }
    assert nothing_more
