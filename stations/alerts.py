"""Open, resolve and acknowledge alerts. Safe to call repeatedly."""

import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from stations.models import Alert, AlertSeverity, ChargePoint, Site

logger = logging.getLogger(__name__)


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
        extra={"alert": alert.pk, "alert_kind": kind, "subject": subject},
    )
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
