"""Open, resolve and acknowledge alerts; the checks that feed them; e-mail.

Every function is safe to call repeatedly: one alert stays open per kind and
subject until it is resolved. Callers elsewhere pass plain values:

- the OCPP bridge's offline check calls ``alert_open``/``alert_resolve`` with
  ``AlertKind.CHARGER_OFFLINE`` and the charge point identity as subject;
- remote commands report their outcome to ``command_outcome_alert``;
- the forecast evaluation reports errors to ``forecast_accuracy_alert`` and
  the retrain schedule to ``retrain_overdue_alert``;
- ``connector_faults_check`` and ``site_silence_check`` run from beat.
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
    ChargePointStatus,
    Connector,
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

# A connector that reports Faulted and recovers within minutes (a charger
# rebooting, a cable re-seated) is not worth a page; a quarter of an hour is.
CONNECTOR_FAULTED_ALERT_AFTER = timedelta(minutes=15)
# OCPP 1.6 §4.6: chargers send a Heartbeat every interval given in the boot
# answer. Three missed intervals from every charger of a site means the site
# (its uplink or power) is down, not one charger.
SITE_SILENT_AFTER_INTERVALS = 3


def connector_fault_subject(*, identity: str, number: int) -> str:
    return f"{identity}/{number}"


def connector_faults_check(*, now: datetime | None = None) -> dict[str, int]:
    """Open an alert per connector Faulted for long; resolve those that recovered."""
    now = now or timezone.now()
    cutoff = now - CONNECTOR_FAULTED_ALERT_AFTER
    faulted = list(
        Connector.objects.filter(
            status=ChargePointStatus.FAULTED, status_updated_at__lte=cutoff
        ).select_related("charge_point__site")
    )
    still_faulted = set(
        Connector.objects.filter(status=ChargePointStatus.FAULTED).values_list(
            "charge_point__identity", "number"
        )
    )
    open_subjects = set(
        Alert.objects.filter(
            kind=AlertKind.CONNECTOR_FAULTED, resolved_at__isnull=True
        ).values_list("subject", flat=True)
    )

    opened = 0
    for connector in faulted:
        cp = connector.charge_point
        subject = connector_fault_subject(identity=cp.identity, number=connector.number)
        if subject in open_subjects:
            continue
        error = f" ({connector.error_code})" if connector.error_code else ""
        alert_open(
            kind=AlertKind.CONNECTOR_FAULTED,
            subject=subject,
            message=(
                f"Connector {connector.number} of {cp.identity} has reported "
                f"Faulted{error} since {connector.status_updated_at:%Y-%m-%d %H:%M} "
                "UTC."
            ),
            severity=AlertSeverity.WARNING,
            site=cp.site,
            charge_point=cp,
        )
        opened += 1
    recovered = {
        subject
        for subject in open_subjects
        if tuple(_split_connector_subject(subject)) not in still_faulted
    }
    resolved = sum(
        alert_resolve(kind=AlertKind.CONNECTOR_FAULTED, subject=subject)
        for subject in recovered
    )
    return {"opened": opened, "resolved": resolved}


def _split_connector_subject(subject: str) -> tuple[str, int]:
    identity, _, number = subject.rpartition("/")
    return identity, int(number) if number.isdigit() else -1


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


# Outcomes of ocpp_bridge.commands.CommandResult. "not_connected" is covered by
# the charger-offline alert and "invalid" is the caller's mistake: neither
# says the charger is in trouble.
COMMAND_FAILED_OUTCOMES = {"call_error", "timeout"}


def command_outcome_alert(
    *,
    charge_point: ChargePoint,
    action: str,
    outcome: str,
    error_code: str = "",
    error_description: str = "",
) -> Alert | None:
    """Open an alert when a remote command failed; resolve it when one succeeds."""
    subject = f"{charge_point.identity}:{action}"
    if outcome == "answered":
        alert_resolve(kind=AlertKind.COMMAND_FAILED, subject=subject)
        return None
    if outcome not in COMMAND_FAILED_OUTCOMES:
        return None
    detail = f"{error_code}: {error_description}".strip(": ") or outcome
    return alert_open(
        kind=AlertKind.COMMAND_FAILED,
        subject=subject,
        message=f"{action} to {charge_point.identity} failed ({outcome}): {detail}",
        severity=AlertSeverity.WARNING,
        site=charge_point.site,
        charge_point=charge_point,
    )


def forecast_accuracy_alert(
    *,
    site: Site,
    task: str,
    model_error: float,
    baseline_error: float,
    model_version: str,
    metric: str = "MAE",
) -> Alert | None:
    """Open an alert when the active model did worse than the baseline."""
    subject = f"site:{site.code}:{task}"
    if model_error <= baseline_error:
        alert_resolve(kind=AlertKind.FORECAST_WORSE_THAN_BASELINE, subject=subject)
        return None
    return alert_open(
        kind=AlertKind.FORECAST_WORSE_THAN_BASELINE,
        subject=subject,
        message=(
            f"Model {model_version} forecast {task} at {site.name} with "
            f"{metric} {model_error:.3f}, worse than the seasonal-naive baseline "
            f"({baseline_error:.3f})."
        ),
        severity=AlertSeverity.WARNING,
        site=site,
    )


def retrain_overdue_alert(
    *, task: str, last_success_at: datetime | None, max_age: timedelta
) -> Alert | None:
    """Open an alert when the last successful retrain is older than ``max_age``."""
    subject = f"retrain:{task}"
    now = timezone.now()
    if last_success_at is not None and now - last_success_at <= max_age:
        alert_resolve(kind=AlertKind.RETRAIN_OVERDUE, subject=subject)
        return None
    when = (
        f"last succeeded {last_success_at:%Y-%m-%d %H:%M} UTC"
        if last_success_at
        else "never succeeded"
    )
    return alert_open(
        kind=AlertKind.RETRAIN_OVERDUE,
        subject=subject,
        message=f"Retraining of {task} {when}.",
        severity=AlertSeverity.WARNING,
    )
