from django.contrib import admin
from django.http import HttpRequest
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from api_access.models import ApiKey

# The library's own unscoped key model stays unused: one kind of key in the admin.
admin.site.unregister(APIKey)


@admin.register(ApiKey)
class ApiKeyAdmin(APIKeyModelAdmin):
    """Create (key shown once in a message) and revoke API keys."""

    list_display = (
        "prefix",
        "name",
        "scope",
        "created",
        "created_by",
        "last_used_at",
        "expiry_date",
        "_has_expired",
        "revoked",
    )
    list_filter = ("scope", "revoked", "created")
    readonly_fields = ("last_used_at", "created_by")
    actions = ["revoke_keys"]

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> tuple[str, ...]:
        fields = (*super().get_readonly_fields(request, obj), "last_used_at")
        if obj is not None:
            # The scope of an existing key is fixed: a new scope needs a new key.
            fields = (*fields, "scope", "created_by")
        return fields

    def save_model(self, request: HttpRequest, obj: ApiKey, form, change) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.action(description="Revoke the selected keys")
    def revoke_keys(self, request: HttpRequest, queryset) -> None:
        count = queryset.filter(revoked=False).update(revoked=True)
        self.message_user(request, f"{count} key(s) revoked.")
