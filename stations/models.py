"""Sites, charge points, connectors and their status history."""

from zoneinfo import ZoneInfo, available_timezones

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower


def validate_time_zone(value: str) -> None:
    if value not in available_timezones():
        raise ValidationError(f"{value!r} is not an IANA time zone name.")


class Site(models.Model):
    """A place with chargers: a campus car park, a depot, a garage."""

    code = models.SlugField(
        max_length=64, unique=True, help_text="Short stable name, e.g. 'caltech'."
    )
    name = models.CharField(max_length=200)
    time_zone = models.CharField(
        max_length=64, default="UTC", validators=[validate_time_zone]
    )
    address = models.CharField(max_length=300, blank=True)
    latitude = models.DecimalField(
        max_digits=9, decimal_places=6, null=True, blank=True
    )
    longitude = models.DecimalField(
        max_digits=9, decimal_places=6, null=True, blank=True
    )
    grid_capacity_kw = models.DecimalField(
        max_digits=10, decimal_places=2, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


class RegistrationStatus(models.TextChoices):
    """OCPP 1.6 RegistrationStatus, as answered to BootNotification."""

    ACCEPTED = "Accepted"
    PENDING = "Pending"
    REJECTED = "Rejected"


class ChargePointStatus(models.TextChoices):
    """OCPP 1.6 ChargePointStatus (§7.7), plus Unknown before the first report."""

    AVAILABLE = "Available"
    PREPARING = "Preparing"
    CHARGING = "Charging"
    SUSPENDED_EVSE = "SuspendedEVSE"
    SUSPENDED_EV = "SuspendedEV"
    FINISHING = "Finishing"
    RESERVED = "Reserved"
    UNAVAILABLE = "Unavailable"
    FAULTED = "Faulted"
    UNKNOWN = "Unknown"


class ChargePoint(models.Model):
    """One charging station, known to OCPP by its ``identity``."""

    identity = models.CharField(
        max_length=48,
        unique=True,
        help_text="OCPP charge point id: the last part of /ocpp/<id>.",
    )
    site = models.ForeignKey(
        Site, on_delete=models.PROTECT, related_name="charge_points"
    )
    # Sized well past the OCPP CiString limits: real chargers send longer
    # serial numbers and models (field case FC-24) and these identify hardware.
    vendor = models.CharField(max_length=255, blank=True)
    model = models.CharField(max_length=255, blank=True)
    serial_number = models.CharField(max_length=255, blank=True)
    charge_box_serial_number = models.CharField(max_length=255, blank=True)
    firmware_version = models.CharField(max_length=255, blank=True)
    boot_info = models.JSONField(
        default=dict, blank=True, help_text="Last BootNotification as sent."
    )
    protocol = models.CharField(max_length=20, blank=True, default="ocpp1.6")
    registration_status = models.CharField(
        max_length=16,
        choices=RegistrationStatus.choices,
        default=RegistrationStatus.ACCEPTED,
    )
    status = models.CharField(
        max_length=16,
        choices=ChargePointStatus.choices,
        default=ChargePointStatus.UNKNOWN,
        help_text="Status of connector 0, the charge point as a whole.",
    )
    error_code = models.CharField(max_length=32, blank=True)
    password_hash = models.CharField(
        max_length=128,
        blank=True,
        help_text="OCPP security profile 1 password (hashed).",
    )
    energy_scale = models.FloatField(
        default=1.0,
        help_text=(
            "Multiplier for energy registers this charger reports, for firmware "
            "that labels kWh as Wh (set 1000). Normalised values are recomputed "
            "when it changes; raw values never change."
        ),
    )
    flags = models.JSONField(
        default=list,
        blank=True,
        help_text="Deviations from the OCPP schema seen from this charger.",
    )
    capabilities = models.JSONField(
        default=dict,
        blank=True,
        help_text="What the charger answered it cannot do, e.g. a CallError code.",
    )
    malformed_frames = models.PositiveIntegerField(
        default=0, help_text="Frames that deviated from the OCPP schema."
    )
    last_connect_error = models.CharField(max_length=255, blank=True)
    is_connected = models.BooleanField(default=False)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    last_boot_at = models.DateTimeField(null=True, blank=True)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["identity"]
        indexes = [models.Index(fields=["site", "identity"])]
        constraints = [
            models.UniqueConstraint(
                Lower("identity"), name="charge_point_identity_ci_unique"
            )
        ]

    def __str__(self) -> str:
        return self.identity


class Connector(models.Model):
    """A connector of a charge point, numbered from 1 as in OCPP."""

    charge_point = models.ForeignKey(
        ChargePoint, on_delete=models.CASCADE, related_name="connectors"
    )
    number = models.PositiveIntegerField()
    status = models.CharField(
        max_length=16,
        choices=ChargePointStatus.choices,
        default=ChargePointStatus.UNKNOWN,
    )
    error_code = models.CharField(max_length=32, blank=True)
    max_power_w = models.PositiveIntegerField(null=True, blank=True)
    status_updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["charge_point", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["charge_point", "number"], name="connector_number_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(number__gte=1), name="connector_number_gte_1"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.charge_point.identity}/{self.number}"


class StatusEvent(models.Model):
    """One StatusNotification (or a status the portal derived), kept as history.

    ``connector_number`` 0 means the charge point itself, as in OCPP.
    """

    charge_point = models.ForeignKey(
        ChargePoint, on_delete=models.CASCADE, related_name="status_events"
    )
    connector = models.ForeignKey(
        Connector,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="status_events",
    )
    connector_number = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=32)
    error_code = models.CharField(max_length=32, blank=True)
    error_code_raw = models.CharField(
        max_length=64, blank=True, help_text="errorCode as sent, when not in the enum."
    )
    info = models.CharField(max_length=255, blank=True)
    vendor_id = models.CharField(max_length=255, blank=True)
    vendor_error_code = models.CharField(max_length=255, blank=True)
    timestamp = models.DateTimeField(
        help_text="When the charger says it happened (UTC)."
    )
    raw_timestamp = models.CharField(max_length=64, blank=True)
    timestamp_zone_assumed = models.BooleanField(default=False)
    flags = models.JSONField(default=list, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-timestamp"]
        indexes = [
            models.Index(fields=["charge_point", "-timestamp"]),
            models.Index(fields=["connector", "-timestamp"]),
        ]

    def __str__(self) -> str:
        return f"{self.charge_point_id}/{self.connector_number} {self.status}"


class AlertSeverity(models.TextChoices):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertKind(models.TextChoices):
    CHARGER_OFFLINE = "charger_offline", "Charger offline"
    CONNECTOR_FAULTED = "connector_faulted", "Connector faulted"
    SITE_SILENT = "site_silent", "No heartbeats from a site"
    FORECAST_WORSE_THAN_BASELINE = "forecast_worse", "Forecast worse than baseline"
    RETRAIN_OVERDUE = "retrain_overdue", "Retrain overdue"
    COMMAND_FAILED = "command_failed", "Remote command failed"


class Alert(models.Model):
    """Something an operator should look at. One open alert per kind and subject."""

    kind = models.CharField(max_length=32, choices=AlertKind.choices)
    subject = models.CharField(
        max_length=200,
        help_text="What it is about, e.g. a charge point id or 'site:caltech'.",
    )
    severity = models.CharField(
        max_length=16, choices=AlertSeverity.choices, default=AlertSeverity.WARNING
    )
    message = models.TextField(blank=True)
    site = models.ForeignKey(
        Site, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts"
    )
    charge_point = models.ForeignKey(
        ChargePoint,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="alerts",
    )
    opened_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-opened_at"]
        indexes = [models.Index(fields=["resolved_at", "-opened_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "subject"],
                condition=models.Q(resolved_at__isnull=True),
                name="alert_one_open_per_kind_subject",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.subject}"
