"""Alerts an operator sees: opened by checks, shown, acknowledged, mailed."""

from datetime import timedelta

import pytest
from django.core import mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from stations.alerts import (
    alert_list_open,
    alert_open,
    retrain_overdue_alert,
    site_silence_check,
)
from stations.models import Alert, AlertKind, AlertSeverity, ChargePoint


@pytest.fixture
def offline_alert(charge_point):
    return alert_open(
        kind=AlertKind.CHARGER_OFFLINE,
        subject=charge_point.identity,
        message="No frame for 15 minutes.",
        site=charge_point.site,
        charge_point=charge_point,
    )


def test_a_site_whose_chargers_all_went_silent_gets_one_alert(site, settings):
    settings.OCPP_HEARTBEAT_INTERVAL_S = 300
    now = timezone.now()
    for n, minutes in enumerate((16, 40)):
        ChargePoint.objects.create(
            identity=f"S-{n}", site=site, last_seen_at=now - timedelta(minutes=minutes)
        )

    first = site_silence_check(now=now)
    again = site_silence_check(now=now)

    assert first == {"opened": 1, "resolved": 0}
    assert again == {"opened": 0, "resolved": 0}
    alert = Alert.objects.get(kind=AlertKind.SITE_SILENT)
    assert alert.subject == "site:campus"
    assert alert.severity == AlertSeverity.CRITICAL
    assert alert.resolved_at is None


def test_one_live_charger_keeps_a_site_quiet_and_resolves_its_alert(site, settings):
    settings.OCPP_HEARTBEAT_INTERVAL_S = 300
    now = timezone.now()
    ChargePoint.objects.create(
        identity="S-0", site=site, last_seen_at=now - timedelta(hours=1)
    )
    site_silence_check(now=now)
    ChargePoint.objects.create(
        identity="S-1", site=site, last_heartbeat_at=now - timedelta(minutes=2)
    )

    result = site_silence_check(now=now)

    assert result == {"opened": 0, "resolved": 1}
    assert not alert_list_open().exists()


def test_a_site_never_heard_from_is_not_watched(site, charge_point):
    assert site_silence_check() == {"opened": 0, "resolved": 0}


def test_retrain_overdue_opens_after_two_missed_nights_and_resolves(db):
    assert retrain_overdue_alert(seconds_since_retrain=20 * 3600) is None
    alert = retrain_overdue_alert(seconds_since_retrain=60 * 3600)

    assert alert.kind == AlertKind.RETRAIN_OVERDUE
    assert "60 hours ago" in alert.message
    retrain_overdue_alert(seconds_since_retrain=3600)
    alert.refresh_from_db()
    assert alert.resolved_at is not None


def test_a_portal_that_never_trained_is_not_alerted(db):
    assert retrain_overdue_alert(seconds_since_retrain=None) is None
    assert not Alert.objects.exists()


# --- E-mail ----------------------------------------------------------------------


def test_an_opened_alert_is_mailed_after_commit(
    charge_point, settings, django_capture_on_commit_callbacks
):
    settings.ALERT_EMAIL_TO = ["noc@example.org"]

    with django_capture_on_commit_callbacks(execute=True):
        alert_open(
            kind=AlertKind.CHARGER_OFFLINE,
            subject=charge_point.identity,
            site=charge_point.site,
            charge_point=charge_point,
            message="No frame for 15 minutes.",
        )
        assert mail.outbox == []

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["noc@example.org"]
    assert message.subject == "[GIU EV] Warning: Charger offline: CP-1"
    assert "No frame for 15 minutes." in message.body
    assert "/alerts/" in message.body


def test_an_alert_already_open_is_not_mailed_twice(
    offline_alert, settings, django_capture_on_commit_callbacks
):
    settings.ALERT_EMAIL_TO = ["noc@example.org"]

    with django_capture_on_commit_callbacks(execute=True):
        alert_open(kind=AlertKind.CHARGER_OFFLINE, subject=offline_alert.subject)

    assert mail.outbox == []


def test_staff_with_an_address_get_alerts_when_asked_for(
    charge_point,
    staff_user,
    operator_user,
    settings,
    django_capture_on_commit_callbacks,
):
    settings.ALERT_EMAIL_STAFF = True
    staff_user.email = "staff@example.org"
    staff_user.save()
    operator_user.email = "operator@example.org"
    operator_user.save()

    with django_capture_on_commit_callbacks(execute=True):
        alert_open(kind=AlertKind.CHARGER_OFFLINE, subject="CP-1")

    assert [m.to for m in mail.outbox] == [["staff@example.org"]]


def test_no_mail_without_recipients_or_below_the_threshold(
    db, settings, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        alert_open(kind=AlertKind.CHARGER_OFFLINE, subject="CP-1")
    settings.ALERT_EMAIL_TO = ["noc@example.org"]
    settings.ALERT_EMAIL_MIN_SEVERITY = "critical"
    with django_capture_on_commit_callbacks(execute=True):
        alert_open(kind=AlertKind.CHARGER_OFFLINE, subject="CP-2")

    assert mail.outbox == []


def test_an_alert_rolled_back_is_not_mailed(
    db, settings, django_capture_on_commit_callbacks
):
    settings.ALERT_EMAIL_TO = ["noc@example.org"]

    with django_capture_on_commit_callbacks(execute=True):
        try:
            with transaction.atomic():
                alert_open(kind=AlertKind.CHARGER_OFFLINE, subject="CP-1")
                raise RuntimeError("the caller failed after opening")
        except RuntimeError:
            pass

    assert mail.outbox == []
    assert not Alert.objects.exists()


def test_a_mail_server_that_fails_leaves_the_alert_open(
    db, settings, django_capture_on_commit_callbacks
):
    settings.ALERT_EMAIL_TO = ["noc@example.org"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = 1  # nothing listens: connection refused
    settings.EMAIL_TIMEOUT = 1

    with django_capture_on_commit_callbacks(execute=True):
        alert = alert_open(kind=AlertKind.CHARGER_OFFLINE, subject="CP-1")

    assert Alert.objects.get(pk=alert.pk).resolved_at is None


# --- Pages -----------------------------------------------------------------------


def test_the_alerts_page_needs_a_login(client, db):
    response = client.get(reverse("alert_list"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_alerts_page_lists_open_and_recently_resolved_alerts(
    operator_client, offline_alert, django_assert_max_num_queries
):
    resolved = alert_open(kind=AlertKind.COMMAND_FAILED, subject="CP-1:Reset")
    Alert.objects.filter(pk=resolved.pk).update(resolved_at=timezone.now())
    for n in range(20):
        alert_open(kind=AlertKind.CHARGER_OFFLINE, subject=f"CP-X{n}")

    with django_assert_max_num_queries(8):
        response = operator_client.get(reverse("alert_list"))

    assert response.status_code == 200
    page = response.content.decode()
    assert "Open alerts" in page
    assert "No frame for 15 minutes." in page
    assert "CP-1:Reset" in page
    assert reverse("station_detail", args=["CP-1"]) in page
    assert page.count("Acknowledge</button>") == 21


def test_an_operator_acknowledges_an_alert_and_comes_back(
    operator_client, operator_user, offline_alert
):
    response = operator_client.post(
        reverse("alert_acknowledge", args=[offline_alert.pk]),
        {"next": "/stations/CP-1/"},
    )

    assert response.status_code == 302
    assert response["Location"] == "/stations/CP-1/"
    offline_alert.refresh_from_db()
    assert offline_alert.acknowledged_by == operator_user
    assert offline_alert.acknowledged_at is not None
    page = operator_client.get(reverse("alert_list")).content.decode()
    assert "operator," in page
    assert "Acknowledge</button>" not in page


def test_acknowledge_refuses_get_and_foreign_redirects(operator_client, offline_alert):
    assert (
        operator_client.get(
            reverse("alert_acknowledge", args=[offline_alert.pk])
        ).status_code
        == 405
    )
    response = operator_client.post(
        reverse("alert_acknowledge", args=[offline_alert.pk]),
        {"next": "https://evil.example/"},
    )
    assert response["Location"] == reverse("alert_list")


def test_the_partial_shows_a_station_its_own_alerts(rf, operator_user, offline_alert):
    from django.template.loader import render_to_string

    other = ChargePoint.objects.create(identity="CP-2", site=offline_alert.site)
    alert_open(kind=AlertKind.CHARGER_OFFLINE, subject="CP-2", charge_point=other)
    request = rf.get("/stations/CP-1/")
    request.user = operator_user

    html = render_to_string(
        "stations/partials/alerts.html",
        {"alerts": alert_list_open(charge_point=offline_alert.charge_point)},
        request=request,
    )

    assert "CP-1" in html
    assert "CP-2" not in html
    assert 'name="next" value="/stations/CP-1/"' in html


def test_staff_acknowledge_alerts_in_the_admin(staff_client, staff_user, offline_alert):
    changelist = staff_client.get(reverse("admin:stations_alert_changelist"))
    response = staff_client.post(
        reverse("admin:stations_alert_changelist"),
        {"action": "acknowledge", "_selected_action": [offline_alert.pk]},
    )

    assert changelist.status_code == 200
    assert response.status_code == 302
    offline_alert.refresh_from_db()
    assert offline_alert.acknowledged_by == staff_user
