"""Open, resolve and acknowledge alerts; the checks that feed them; e-mail.

Every function is safe to call repeatedly: one alert stays open per kind and
subject until it is resolved. Callers elsewhere pass plain values:

- the OCPP bridge's offline check calls ``alert_open``/``alert_resolve`` with
  ``AlertKind.CHARGER_OFFLINE`` and the charge point identity as subject;
- status notifications open and resolve ``CONNECTOR_FAULTED`` (stations.services);
- remote commands open ``COMMAND_FAILED`` (ocpp_bridge.commands);
- the forecast evaluation opens ``FORECAST_WORSE_THAN_BASELINE``
  (forecasting.services.evaluation);
- ``site_silence_check`` and ``retrain_overdue_alert`` run from beat
  (stations.tasks, giu_ev.tasks).
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Max, Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from stations.models import (
    Alert,
    AlertKind,
    AlertSeverity,
    ChargePoint,
    Site,
)

logger = logging.getLogger(__name__)

SEVERITY_RANK = {
    AlertSeverity.INFO: 0,
    AlertSeverity.WARNING: 1,
    AlertSeverity.CRITICAL: 2,
}


def alert_open(
    *,
    kind: str,
    subject: str,
    message: str = "",
    severity: str = AlertSeverity.WARNING,
    site: Site | None = None,
    charge_point: ChargePoint | None = None,
) -> Alert:
    """Open an alert, or return the one already open for this kind and subject."""
    existing = Alert.objects.filter(
        kind=kind, subject=subject, resolved_at__isnull=True
    ).first()
    if existing is not None:
        return existing

    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                kind=kind,
                subject=subject,
                message=message,
                severity=severity,
                site=site,
                charge_point=charge_point,
                opened_at=timezone.now(),
            )
    except IntegrityError:
        # Another worker opened the same alert between our read and our write.
        return Alert.objects.get(kind=kind, subject=subject, resolved_at__isnull=True)

    logger.warning(
        "Alert opened: %s on %s",
        kind,
        subject,
        extra={
            "alert": alert.pk,
            "alert_kind": kind,
            "subject": subject,
            "charge_point": charge_point.identity if charge_point else None,
        },
    )
    transaction.on_commit(lambda: alert_email_send(alert_id=alert.pk))
    return alert


def alert_resolve(*, kind: str, subject: str) -> int:
    """Resolve the open alert of this kind and subject, if any. Returns how many."""
    resolved = Alert.objects.filter(
        kind=kind, subject=subject, resolved_at__isnull=True
    ).update(resolved_at=timezone.now())
    if resolved:
        logger.info(
            "Alert resolved: %s on %s", kind, subject, extra={"subject": subject}
        )
    return resolved


def alert_acknowledge(*, alert: Alert, user) -> Alert:
    if alert.acknowledged_at is None:
        alert.acknowledged_at = timezone.now()
        alert.acknowledged_by = user
        alert.save(update_fields=["acknowledged_at", "acknowledged_by"])
    return alert


# --- Reading --------------------------------------------------------------------


def alert_list_open(
    *, site: Site | None = None, charge_point: ChargePoint | None = None
) -> QuerySet[Alert]:
    """Open alerts, most severe and newest first; of a site or charge point."""
    alerts = Alert.objects.filter(resolved_at__isnull=True).select_related(
        "site", "charge_point", "acknowledged_by"
    )
    if charge_point is not None:
        alerts = alerts.filter(charge_point=charge_point)
    elif site is not None:
        alerts = alerts.filter(Q(site=site) | Q(charge_point__site=site))
    return alerts.order_by("acknowledged_at", "-opened_at")


def alert_list_recent(*, days: int = 7, limit: int = 100) -> QuerySet[Alert]:
    """Alerts resolved in the last ``days`` days, newest first."""
    since = timezone.now() - timedelta(days=days)
    return (
        Alert.objects.filter(resolved_at__gte=since)
        .select_related("site", "charge_point", "acknowledged_by")
        .order_by("-resolved_at")[:limit]
    )


# --- E-mail ------------------------------------------------------------------------


def alert_email_recipients() -> list[str]:
    """ALERT_EMAIL_TO, plus active staff with an address if ALERT_EMAIL_STAFF."""
    recipients = list(settings.ALERT_EMAIL_TO)
    if settings.ALERT_EMAIL_STAFF:
        recipients += (
            get_user_model()
            .objects.filter(is_staff=True, is_active=True)
            .exclude(email="")
            .values_list("email", flat=True)
        )
    return sorted(set(recipients))


def alert_email_send(*, alert_id: int) -> bool:
    """Mail a newly opened alert to staff. Runs after the opening commits.

    A mail server that is down must not undo or block the alert: the failure
    is logged and the alert stays open on the portal.
    """
    recipients = alert_email_recipients()
    alert = Alert.objects.select_related("site", "charge_point").get(pk=alert_id)
    if not recipients or (
        SEVERITY_RANK[alert.severity] < SEVERITY_RANK[settings.ALERT_EMAIL_MIN_SEVERITY]
    ):
        return False

    subject = f"[GIU EV] {alert.get_severity_display()}: {alert}"
    lines = [
        f"{alert.get_kind_display()} on {alert.subject}",
        f"Opened: {alert.opened_at:%Y-%m-%d %H:%M:%S} UTC",
    ]
    if alert.site is not None:
        lines.append(f"Site: {alert.site}")
    if alert.message:
        lines += ["", alert.message]
    lines += ["", f"Alerts page: {reverse('alert_list')}"]
    try:
        send_mail(subject, "\n".join(lines), None, recipients, fail_silently=False)
    except Exception:  # SMTP errors come in many types; none may escape
        logger.exception("Alert e-mail failed", extra={"alert": alert.pk})
        return False
    return True


# --- Checks and reporters ------------------------------------------------------------

# OCPP 1.6 §4.6: chargers send a Heartbeat every interval given in the boot
# answer. Three missed intervals from every charger of a site means the site
# (its uplink or power) is down, not one charger.
SITE_SILENT_AFTER_INTERVALS = 3


def site_silence_check(*, now: datetime | None = None) -> dict[str, int]:
    """Alert when no charger of a site has been heard from for three intervals.

    Sites none of whose chargers was ever heard from (imported history only)
    are not watched.
    """
    now = now or timezone.now()
    silent_after = timedelta(
        seconds=settings.OCPP_HEARTBEAT_INTERVAL_S * SITE_SILENT_AFTER_INTERVALS
    )
    sites = Site.objects.annotate(
        last_heard=Max("charge_points__last_seen_at"),
        last_heartbeat=Max("charge_points__last_heartbeat_at"),
    ).filter(Q(last_heard__isnull=False) | Q(last_heartbeat__isnull=False))
    open_subjects = set(
        Alert.objects.filter(
            kind=AlertKind.SITE_SILENT, resolved_at__isnull=True
        ).values_list("subject", flat=True)
    )

    opened = resolved = 0
    for site in sites:
        newest = max(t for t in (site.last_heard, site.last_heartbeat) if t)
        subject = f"site:{site.code}"
        if now - newest > silent_after:
            if subject in open_subjects:
                continue
            alert_open(
                kind=AlertKind.SITE_SILENT,
                subject=subject,
                message=(
                    f"No charger at {site.name} has sent anything since "
                    f"{newest:%Y-%m-%d %H:%M} UTC."
                ),
                severity=AlertSeverity.CRITICAL,
                site=site,
            )
            opened += 1
        else:
            resolved += alert_resolve(kind=AlertKind.SITE_SILENT, subject=subject)
    return {"opened": opened, "resolved": resolved}


# Retraining runs nightly (forecasting's beat schedule, 02:30 UTC): two missed
# runs and two hours of slack for a long training before it is overdue.
RETRAIN_MAX_AGE = timedelta(hours=50)


def retrain_overdue_alert(
    *, seconds_since_retrain: float | None, max_age: timedelta = RETRAIN_MAX_AGE
) -> Alert | None:
    """Open an alert when the last successful retrain is older than ``max_age``.

    A portal that never trained a model (a fresh install, nothing to train on
    yet) is not alerted: there is nothing overdue.
    """
    subject = "retrain:forecasting"
    if seconds_since_retrain is None:
        return None
    if seconds_since_retrain <= max_age.total_seconds():
        alert_resolve(kind=AlertKind.RETRAIN_OVERDUE, subject=subject)
        return None
    hours = seconds_since_retrain / 3600
    return alert_open(
        kind=AlertKind.RETRAIN_OVERDUE,
        subject=subject,
        message=(
            f"The last successful retrain finished {hours:.0f} hours ago; "
            f"retraining runs nightly and is overdue after "
            f"{max_age.total_seconds() / 3600:.0f} hours."
        ),
        severity=AlertSeverity.WARNING,
    )
