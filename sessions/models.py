"""Fleets, vehicles, id tokens, charging sessions and meter samples."""

from datetime import timedelta

from django.db import models
from django.db.models.functions import Upper

from stations.models import ChargePoint, Connector, Site


class Fleet(models.Model):
    """A group of vehicles run by one owner: a company pool, a car-sharing garage."""

    name = models.CharField(max_length=200, unique=True)
    site = models.ForeignKey(
        Site,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="fleets",
        help_text="Home site, where the fleet usually charges.",
    )
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Vehicle(models.Model):
    """A fleet asset, or the vehicle behind a driver's token."""

    fleet = models.ForeignKey(
        Fleet, null=True, blank=True, on_delete=models.SET_NULL, related_name="vehicles"
    )
    name = models.CharField(max_length=200)
    make = models.CharField(max_length=100, blank=True)
    vehicle_model = models.CharField("model", max_length=100, blank=True)
    battery_capacity_kwh = models.DecimalField(
        max_digits=7, decimal_places=2, null=True, blank=True
    )
    external_id = models.CharField(
        max_length=200,
        unique=True,
        null=True,
        blank=True,
        help_text="Key in the data set the vehicle was imported from.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class IdTokenStatus(models.TextChoices):
    """OCPP 1.6 AuthorizationStatus as stored for a token."""

    ACCEPTED = "Accepted"
    BLOCKED = "Blocked"
    EXPIRED = "Expired"
    INVALID = "Invalid"


class IdToken(models.Model):
    """An RFID card or app token. OCPP compares idTags without regard to case."""

    class Kind(models.TextChoices):
        RFID = "rfid", "RFID"
        APP = "app", "App"
        IMPORTED = "imported", "Imported user"

    value = models.CharField(max_length=20, help_text="OCPP idTag (CiString20).")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.RFID)
    status = models.CharField(
        max_length=16, choices=IdTokenStatus.choices, default=IdTokenStatus.ACCEPTED
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    owner = models.CharField(max_length=200, blank=True)
    vehicle = models.ForeignKey(
        Vehicle,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="id_tokens",
    )
    parent_id_tag = models.CharField(max_length=20, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["value"]
        constraints = [
            models.UniqueConstraint(Upper("value"), name="id_token_value_ci_unique")
        ]

    def __str__(self) -> str:
        return self.value


class SessionSource(models.TextChoices):
    OCPP = "ocpp", "OCPP"
    IMPORT = "import", "Import"


class ChargingSession(models.Model):
    """One charging session: an OCPP transaction, or a session from a data set.

    For OCPP sessions the primary key is the transactionId given to the charger.
    Energy is in Wh throughout; ``energy_wh`` is what was delivered.
    """

    charge_point = models.ForeignKey(
        ChargePoint, on_delete=models.PROTECT, related_name="sessions"
    )
    connector = models.ForeignKey(
        Connector,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="sessions",
    )
    connector_number = models.PositiveIntegerField(default=1)
    id_token = models.ForeignKey(
        IdToken,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="sessions",
    )
    id_tag = models.CharField(
        max_length=255, blank=True, help_text="idTag as the charger sent it."
    )
    vehicle = models.ForeignKey(
        Vehicle,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="sessions",
    )
    started_at = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True)
    done_charging_at = models.DateTimeField(
        null=True, blank=True, help_text="When energy stopped flowing, where known."
    )
    meter_start_wh = models.BigIntegerField(null=True, blank=True)
    meter_stop_wh = models.BigIntegerField(null=True, blank=True)
    energy_wh = models.BigIntegerField(null=True, blank=True)
    stop_reason = models.CharField(max_length=32, blank=True)
    source = models.CharField(
        max_length=8, choices=SessionSource.choices, default=SessionSource.OCPP
    )
    external_id = models.CharField(
        max_length=200,
        unique=True,
        null=True,
        blank=True,
        help_text="Key in the data set the session was imported from.",
    )
    requested_energy_wh = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="Energy the driver asked for (driver input only).",
    )
    requested_departure_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Departure the driver stated (driver input only).",
    )
    import_format = models.CharField(
        max_length=16,
        blank=True,
        help_text="Data set format the stored values came from, e.g. 'acn-json'.",
    )
    import_file = models.CharField(
        max_length=300,
        blank=True,
        help_text="File (folder/name) the stored values came from.",
    )
    reservation_id = models.IntegerField(null=True, blank=True)
    raw_start_timestamp = models.CharField(max_length=64, blank=True)
    raw_stop_timestamp = models.CharField(max_length=64, blank=True)
    timestamp_zone_assumed = models.BooleanField(default=False)
    is_unmatched = models.BooleanField(
        default=False,
        help_text="Stop or meter values for a transaction the portal did not know.",
    )
    flags = models.JSONField(
        default=list,
        blank=True,
        help_text="Names of deviations seen in the charger's frames.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["-started_at"]),
            # Session list and CSV export order by (-started_at, -id) and page
            # through it; this index lets them walk it without sorting.
            models.Index(fields=["-started_at", "-id"], name="session_started_id_idx"),
            models.Index(fields=["charge_point", "-started_at"]),
            models.Index(fields=["id_token", "-started_at"]),
            models.Index(fields=["vehicle", "-started_at"]),
            models.Index(
                fields=["charge_point", "connector_number"],
                condition=models.Q(stopped_at__isnull=True),
                name="session_active_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"session {self.pk} on {self.charge_point_id}"

    @property
    def is_active(self) -> bool:
        return self.stopped_at is None

    @property
    def energy_kwh(self) -> float | None:
        return None if self.energy_wh is None else self.energy_wh / 1000

    @property
    def duration(self) -> timedelta | None:
        if self.stopped_at is None:
            return None
        return self.stopped_at - self.started_at


class MeterSample(models.Model):
    """One sampled value of a MeterValues (or transactionData) frame.

    ``raw_value`` and ``unit`` are what the charger sent; ``value`` is normalised
    to ``normalised_unit`` (Wh for energy, W for power, else the SI unit sent).
    """

    session = models.ForeignKey(
        ChargingSession,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="meter_samples",
    )
    charge_point = models.ForeignKey(
        ChargePoint, on_delete=models.CASCADE, related_name="meter_samples"
    )
    connector_number = models.PositiveIntegerField(default=0)
    transaction_ref = models.BigIntegerField(
        null=True, blank=True, help_text="transactionId as the charger sent it."
    )
    timestamp = models.DateTimeField()
    measurand = models.CharField(max_length=64, default="Energy.Active.Import.Register")
    phase = models.CharField(max_length=16, blank=True)
    location = models.CharField(max_length=32, blank=True)
    context = models.CharField(max_length=32, blank=True)
    unit = models.CharField(max_length=32, blank=True, help_text="Unit as sent.")
    # Text: SignedData values are long blobs that must be kept as sent.
    raw_value = models.TextField()
    raw_timestamp = models.CharField(max_length=64, blank=True)
    value = models.FloatField(null=True, blank=True)
    normalised_unit = models.CharField(max_length=16, blank=True)
    flags = models.JSONField(default=list, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["timestamp"]
        indexes = [
            models.Index(fields=["session", "timestamp"]),
            models.Index(fields=["charge_point", "-timestamp"]),
        ]
        constraints = [
            # A charger resends transactionData and MeterValues until they are
            # acknowledged (field case FC-08): one row per reading, not per copy.
            models.UniqueConstraint(
                fields=[
                    "session",
                    "timestamp",
                    "measurand",
                    "phase",
                    "location",
                    "context",
                ],
                condition=models.Q(session__isnull=False),
                name="meter_sample_reading_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.measurand}={self.raw_value}{self.unit} at {self.timestamp}"


class TransactionEventKind(models.TextChoices):
    DUPLICATE_START = "duplicate_start", "Repeated StartTransaction"
    SUPERSEDED = "superseded", "Session ended by a later start on its connector"
    DUPLICATE_STOP = "duplicate_stop", "Repeated StopTransaction"
    CONFLICTING_STOP = "conflicting_stop", "Second stop with different values"
    ORPHAN_STOP = "orphan_stop", "Stop for a transaction the portal did not issue"
    ORPHAN_METER_VALUES = "orphan_meter_values", "Meter values for an unknown tx"


class TransactionEvent(models.Model):
    """Audit of transaction messages that did not fit the normal course.

    Kept for reconciliation: the raw payload the charger sent, what the portal
    did with it, and whether an operator has looked at it.
    """

    kind = models.CharField(max_length=32, choices=TransactionEventKind.choices)
    charge_point = models.ForeignKey(
        ChargePoint, on_delete=models.CASCADE, related_name="transaction_events"
    )
    session = models.ForeignKey(
        ChargingSession,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="transaction_events",
    )
    transaction_ref = models.BigIntegerField(
        null=True, blank=True, help_text="transactionId as the charger sent it."
    )
    message_id = models.CharField(max_length=64, blank=True)
    payload = models.JSONField(default=dict, blank=True)
    reconciled = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["charge_point", "kind", "transaction_ref"])]

    def __str__(self) -> str:
        return f"{self.kind} on {self.charge_point_id} tx {self.transaction_ref}"
