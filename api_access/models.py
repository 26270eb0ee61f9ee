"""API keys for scripts: hashed, scoped, revocable, with a last-used time."""

from django.db import models
from rest_framework_api_key.models import AbstractAPIKey


class ApiKeyScope(models.TextChoices):
    READ_ONLY = "read_only", "Read only"
    READ_WRITE = "read_write", "Read and write"


class ApiKey(AbstractAPIKey):
    """A key a script sends as ``Authorization: Api-Key <prefix>.<secret>``.

    Only the SHA-512 hash of the secret is stored; the full key is shown once,
    when staff create it in the admin. Revoking cannot be undone.
    """

    scope = models.CharField(
        max_length=16, choices=ApiKeyScope.choices, default=ApiKeyScope.READ_ONLY
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        "auth.User",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API key"
        verbose_name_plural = "API keys"

    @property
    def can_write(self) -> bool:
        return self.scope == ApiKeyScope.READ_WRITE
