"""The frame log, remote commands and connection attempts of the OCPP bridge."""

from django.conf import settings
from django.db import models

from stations.models import ChargePoint


class Direction(models.TextChoices):
    IN = "in", "charger to portal"
    OUT = "out", "portal to charger"


class MessageType(models.IntegerChoices):
    """OCPP-J message type ids (OCPP-J 1.6 §4.1.3)."""

    CALL = 2, "Call"
    CALL_RESULT = 3, "CallResult"
    CALL_ERROR = 4, "CallError"


class Frame(models.Model):
    """One WebSocket frame to or from a charger, stored as it was on the wire.

    ``flags`` names deviations (``not_json``, ``schema:maxLength:...``) and
    connection notes (``no_subprotocol``); ``error_code`` is the CallError code
    of a CallError frame.
    """

    charge_point = models.ForeignKey(
        ChargePoint,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="frames",
    )
    identity = models.CharField(max_length=255, blank=True)
    direction = models.CharField(max_length=3, choices=Direction.choices)
    message_type = models.PositiveSmallIntegerField(
        choices=MessageType.choices, null=True, blank=True
    )
    message_id = models.CharField(max_length=64, blank=True)
    action = models.CharField(max_length=64, blank=True)
    payload = models.JSONField(null=True, blank=True)
    raw = models.TextField(blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    flags = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["charge_point", "-created_at"]),
            models.Index(fields=["charge_point", "action", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.action or self.message_type} {self.message_id}"

    @property
    def has_error(self) -> bool:
        return bool(self.error_code or self.flags)


class CommandOutcome(models.TextChoices):
    PENDING = "pending", "Pending"
    ANSWERED = "answered", "Answered"
    CALL_ERROR = "call_error", "CallError"
    TIMEOUT = "timeout", "Timed out"
    NOT_CONNECTED = "not_connected", "Not connected"
    INVALID = "invalid", "Invalid payload"


class RemoteCommand(models.Model):
    """A command the portal sent (or tried to send) to a charger, and its outcome."""

    charge_point = models.ForeignKey(
        ChargePoint, on_delete=models.CASCADE, related_name="remote_commands"
    )
    action = models.CharField(max_length=64)
    payload = models.JSONField(default=dict, blank=True)
    message_id = models.CharField(max_length=64, blank=True)
    # Who asked: a staff or operator user (admin, station page, API with a
    # session), or the API key of a script. Keys are revoked, not deleted, so
    # the key stays on its commands; were one deleted, the field empties.
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    requested_by_api_key = models.ForeignKey(
        "api_access.ApiKey",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name="requested by API key",
    )
    outcome = models.CharField(
        max_length=16, choices=CommandOutcome.choices, default=CommandOutcome.PENDING
    )
    response = models.JSONField(null=True, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["charge_point", "-created_at"])]
        permissions = [("send_command", "Can send remote commands to chargers")]

    def __str__(self) -> str:
        return f"{self.action} to {self.charge_point_id}: {self.outcome}"

    @property
    def requester(self) -> str:
        """Who asked, for lists: the user's name or the API key's, else empty."""
        if self.requested_by_id is not None:
            return str(self.requested_by)
        if self.requested_by_api_key_id is not None:
            key = self.requested_by_api_key
            return f"API key {key.name} ({key.prefix})"
        return ""


class ConnectionAttempt(models.Model):
    """A WebSocket handshake from a charger: accepted, or refused and why.

    Never holds a password or the Authorization header.
    """

    class Outcome(models.TextChoices):
        ACCEPTED = "accepted"
        REFUSED = "refused"

    identity = models.CharField(max_length=255, blank=True)
    charge_point = models.ForeignKey(
        ChargePoint,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="connection_attempts",
    )
    remote_addr = models.CharField(max_length=64, blank=True)
    raw_path = models.CharField(max_length=512, blank=True)
    subprotocols = models.JSONField(default=list, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    reason = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["identity", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.identity} {self.outcome} {self.reason}"
