"""Writes on charge points: registration, passwords, boot, status, liveness.

Called by the OCPP bridge with plain values (aware UTC datetimes, strings,
ints); nothing here knows about OCPP frames.
"""

import logging
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F, Q

from stations.alerts import alert_open, alert_resolve
from stations.models import (
    AlertKind,
    AlertSeverity,
    ChargePoint,
    ChargePointStatus,
    Connector,
    RegistrationStatus,
    Site,
    StatusEvent,
)

logger = logging.getLogger(__name__)

# OCPP 1.6 security whitepaper: the AuthorizationKey (Basic auth password) is
# 16 to 40 characters.
PASSWORD_MIN_LENGTH = 16
PASSWORD_MAX_LENGTH = 40
GENERATED_PASSWORD_LENGTH = 32
_PASSWORD_ALPHABET = string.ascii_letters + string.digits
CHARGER_HASHER = "pbkdf2_sha256_charger"
UNASSIGNED_SITE_CODE = "unassigned"


# --- Registration and passwords -----------------------------------------------


def charge_point_password_set(
    *, charge_point: ChargePoint, password: str | None = None
) -> str:
    """Set (or generate) the charger's password; returns it in clear, once."""
    if password is None:
        password = "".join(
            secrets.choice(_PASSWORD_ALPHABET) for _ in range(GENERATED_PASSWORD_LENGTH)
        )
    if not PASSWORD_MIN_LENGTH <= len(password) <= PASSWORD_MAX_LENGTH:
        raise ValidationError(
            f"A charger password has {PASSWORD_MIN_LENGTH} to "
            f"{PASSWORD_MAX_LENGTH} characters."
        )

    charge_point.password_hash = make_password(password, hasher=CHARGER_HASHER)
    charge_point.save(update_fields=["password_hash"])
    logger.info("Charger password set", extra={"charge_point": charge_point.identity})
    return password


def charge_point_password_check(*, charge_point: ChargePoint, password: str) -> bool:
    if not charge_point.password_hash or not password:
        return False
    return check_password(password, charge_point.password_hash)


def charge_point_create(
    *, identity: str, site: Site, password: str | None = None
) -> tuple[ChargePoint, str]:
    """Create a charger with a password; returns it and the clear password."""
    if ChargePoint.objects.filter(identity__iexact=identity).exists():
        raise ValidationError(f"A charge point {identity!r} exists already.")
    with transaction.atomic():
        charge_point = ChargePoint.objects.create(identity=identity, site=site)
        clear = charge_point_password_set(charge_point=charge_point, password=password)
    return charge_point, clear


def charge_point_register_pending(*, identity: str) -> ChargePoint:
    """Register an unknown charger as Pending on the 'unassigned' site."""
    site, _ = Site.objects.get_or_create(
        code=UNASSIGNED_SITE_CODE,
        defaults={"name": "Unassigned chargers", "time_zone": settings.TIME_ZONE},
    )
    charge_point, created = ChargePoint.objects.get_or_create(
        identity=identity,
        defaults={"site": site, "registration_status": RegistrationStatus.PENDING},
    )
    if created:
        logger.warning(
            "Unknown charger registered as Pending",
            extra={"charge_point": identity},
        )
    return charge_point


def charge_point_connect_error_record(*, charge_point_id: int, reason: str) -> None:
    ChargePoint.objects.filter(pk=charge_point_id).update(last_connect_error=reason)


# --- Liveness -----------------------------------------------------------------


def charge_point_connected(
    *, charge_point_id: int, at: datetime, warning: str = ""
) -> None:
    """The charger's socket is open; ``warning`` notes how it connected oddly."""
    ChargePoint.objects.filter(pk=charge_point_id).update(
        is_connected=True, last_seen_at=at, last_connect_error=warning[:255]
    )


def charge_point_disconnected(*, charge_point_id: int) -> None:
    ChargePoint.objects.filter(pk=charge_point_id).update(is_connected=False)


def charge_point_seen(*, charge_point_id: int, at: datetime) -> None:
    """Any frame from the charger: it is connected and alive."""
    ChargePoint.objects.filter(pk=charge_point_id).update(
        is_connected=True, last_seen_at=at
    )


def charge_points_seen(*, seen: dict[int, datetime]) -> None:
    """Frames from many chargers (by id, with the time each was last heard).

    Plain SQL, in charger order: it runs in the OCPP bridge's frame batches,
    where the ORM's query building would cost more than the update
    (giu_ev/bulk.py).
    """
    table = connection.ops.quote_name(ChargePoint._meta.db_table)
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table} SET is_connected = %s, last_seen_at = %s"  # noqa: S608
            " WHERE id = %s",
            [
                (True, connection.ops.adapt_datetimefield_value(at), pk)
                for pk, at in sorted(seen.items())
            ],
        )


def charge_point_heartbeat(*, charge_point_id: int, at: datetime) -> None:
    ChargePoint.objects.filter(pk=charge_point_id).update(
        is_connected=True, last_seen_at=at, last_heartbeat_at=at
    )


def charge_points_offline_mark(*, now: datetime) -> tuple[int, int]:
    """Mark silent chargers offline and alert; resolve alerts of live ones.

    Silent means no frame for OCPP_OFFLINE_AFTER_INTERVALS heartbeat intervals.
    Returns (marked offline, alerts resolved).
    """
    silence = timedelta(
        seconds=settings.OCPP_HEARTBEAT_INTERVAL_S
        * settings.OCPP_OFFLINE_AFTER_INTERVALS
    )
    cutoff = now - silence
    silent = list(
        ChargePoint.objects.filter(is_connected=True)
        .filter(Q(last_seen_at__lt=cutoff) | Q(last_seen_at__isnull=True))
        .select_related("site")
    )

    for charge_point in silent:
        ChargePoint.objects.filter(pk=charge_point.pk).update(is_connected=False)
        alert_open(
            kind=AlertKind.CHARGER_OFFLINE,
            subject=charge_point.identity,
            message=f"No frame since {charge_point.last_seen_at}.",
            site=charge_point.site,
            charge_point=charge_point,
        )
    resolved = 0
    live = ChargePoint.objects.filter(
        is_connected=True,
        last_seen_at__gte=cutoff,
        alerts__kind=AlertKind.CHARGER_OFFLINE,
        alerts__resolved_at__isnull=True,
    ).values_list("identity", flat=True)
    for identity in set(live):
        resolved += alert_resolve(kind=AlertKind.CHARGER_OFFLINE, subject=identity)
    return len(silent), resolved


# --- Boot, flags, firmware ----------------------------------------------------


@dataclass(frozen=True)
class BootDecision:
    status: str
    interval_s: int


def charge_point_boot(
    *,
    charge_point_id: int,
    vendor: str,
    model: str,
    serial_number: str,
    charge_box_serial_number: str,
    firmware_version: str,
    boot_info: dict,
    at: datetime,
) -> BootDecision:
    """Record what the charger said of itself; answer with its registration."""
    charge_point = ChargePoint.objects.get(pk=charge_point_id)
    charge_point.vendor = vendor
    charge_point.model = model
    charge_point.serial_number = serial_number
    charge_point.charge_box_serial_number = charge_box_serial_number
    charge_point.firmware_version = firmware_version
    charge_point.boot_info = boot_info
    charge_point.last_boot_at = at
    charge_point.last_seen_at = at
    charge_point.is_connected = True
    charge_point.save(
        update_fields=[
            "vendor",
            "model",
            "serial_number",
            "charge_box_serial_number",
            "firmware_version",
            "boot_info",
            "last_boot_at",
            "last_seen_at",
            "is_connected",
        ]
    )
    return BootDecision(
        status=charge_point.registration_status,
        interval_s=settings.OCPP_HEARTBEAT_INTERVAL_S,
    )


def charge_point_flags_add(*, charge_point_id: int, flags: list[str]) -> None:
    """Count a deviating frame and remember which deviations were seen."""
    with transaction.atomic():
        charge_point = ChargePoint.objects.select_for_update().get(pk=charge_point_id)
        known = list(charge_point.flags or [])
        for flag in flags:
            if flag not in known:
                known.append(flag)
        charge_point.flags = known
        charge_point.malformed_frames = F("malformed_frames") + 1
        charge_point.save(update_fields=["flags", "malformed_frames"])


def charge_point_capability_record(
    *, charge_point_id: int, key: str, value: str
) -> None:
    with transaction.atomic():
        charge_point = ChargePoint.objects.select_for_update().get(pk=charge_point_id)
        charge_point.capabilities = {**(charge_point.capabilities or {}), key: value}
        charge_point.save(update_fields=["capabilities"])


def charge_point_firmware_status_record(
    *, charge_point_id: int, kind: str, status: str, at: datetime
) -> None:
    """Firmware, diagnostics or log upload progress the charger reported."""
    with transaction.atomic():
        charge_point = ChargePoint.objects.select_for_update().get(pk=charge_point_id)
        progress = dict((charge_point.boot_info or {}).get("_progress", {}))
        progress[kind] = {"status": status, "at": at.isoformat()}
        charge_point.boot_info = {
            **(charge_point.boot_info or {}),
            "_progress": progress,
        }
        charge_point.save(update_fields=["boot_info"])


# --- Status -------------------------------------------------------------------

_STATUS_VALUES = frozenset(ChargePointStatus.values)


def status_record(
    *,
    charge_point_id: int,
    connector_number: int,
    status: str,
    error_code: str,
    error_code_raw: str = "",
    info: str = "",
    vendor_id: str = "",
    vendor_error_code: str = "",
    timestamp: datetime,
    raw_timestamp: str = "",
    timestamp_zone_assumed: bool = False,
    flags: list[str] | None = None,
) -> StatusEvent:
    """Keep a status report as history and apply it if it is the newest.

    Connector 0 is the charge point itself. A report older than the newest one
    already applied (a charger replaying an old fault at boot after a newer
    report) is kept as history without changing the current status.
    """
    flags = list(flags or [])
    current = status if status in _STATUS_VALUES else ChargePointStatus.UNKNOWN

    with transaction.atomic():
        charge_point = (
            ChargePoint.objects.select_for_update()
            .select_related("site")
            .get(pk=charge_point_id)
        )
        connector = None
        if connector_number >= 1:
            connector, _ = Connector.objects.get_or_create(
                charge_point=charge_point, number=connector_number
            )
        event = StatusEvent.objects.create(
            charge_point=charge_point,
            connector=connector,
            connector_number=connector_number,
            status=status[:32],
            error_code=error_code[:32],
            error_code_raw=error_code_raw[:64],
            info=info[:255],
            vendor_id=vendor_id[:255],
            vendor_error_code=vendor_error_code[:255],
            timestamp=timestamp,
            raw_timestamp=raw_timestamp[:64],
            timestamp_zone_assumed=timestamp_zone_assumed,
            flags=flags,
        )
        newer_exists = (
            StatusEvent.objects.filter(
                charge_point=charge_point,
                connector_number=connector_number,
                timestamp__gt=timestamp,
            )
            .exclude(pk=event.pk)
            .exists()
        )
        if not newer_exists:
            if connector is None:
                charge_point.status = current
                charge_point.error_code = error_code[:32]
                charge_point.save(update_fields=["status", "error_code"])
            else:
                connector.status = current
                connector.error_code = error_code[:32]
                connector.status_updated_at = timestamp
                connector.save(
                    update_fields=["status", "error_code", "status_updated_at"]
                )

    if not newer_exists:
        subject = f"{charge_point.identity}/{connector_number}"
        if current == ChargePointStatus.FAULTED:
            detail = ", ".join(
                part
                for part in (error_code_raw or error_code, info, vendor_error_code)
                if part
            )
            alert_open(
                kind=AlertKind.CONNECTOR_FAULTED,
                subject=subject,
                message=f"Faulted since {timestamp.isoformat()}: {detail}",
                severity=AlertSeverity.CRITICAL,
                site=charge_point.site,
                charge_point=charge_point,
            )
        else:
            alert_resolve(kind=AlertKind.CONNECTOR_FAULTED, subject=subject)
    return event
