"""Admin for the frame log, commands and handshakes; OCPP tools on chargers.

The charge point and session admins of ``stations`` and ``sessions`` are
extended here (not edited there) with password issue, remote command actions
and the energy-scale recompute, so those apps stay free of OCPP.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from ocpp.v16.enums import Action

from ocpp_bridge.commands import command_send
from ocpp_bridge.models import ConnectionAttempt, Frame, RemoteCommand
from ocpp_bridge.views import SEND_PERMISSION
from sessions.admin import ChargingSessionAdmin
from sessions.models import ChargingSession, TransactionEvent
from sessions.services import meter_samples_renormalise
from stations.admin import ChargePointAdmin
from stations.models import ChargePoint
from stations.services import charge_point_password_set


class _FixedChoicesFilter(admin.SimpleListFilter):
    """A filter with a fixed menu: no DISTINCT scan over a large frame table."""

    values: tuple[str, ...] = ()

    def lookups(self, request, model_admin):
        return [(value, value) for value in self.values]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(**{self.parameter_name: self.value()})
        return queryset


class FrameActionFilter(_FixedChoicesFilter):
    title = "action"
    parameter_name = "action"
    values = tuple(sorted(action.value for action in Action))


class FrameErrorFilter(_FixedChoicesFilter):
    title = "CallError"
    parameter_name = "error_code"
    values = (
        "FormationViolation",
        "GenericError",
        "InternalError",
        "NotImplemented",
        "NotSupported",
        "OccurenceConstraintViolation",
        "PropertyConstraintViolation",
        "ProtocolError",
        "SecurityError",
        "TypeConstraintViolation",
    )


@admin.register(Frame)
class FrameAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "charge_point",
        "direction",
        "message_type",
        "action",
        "message_id",
        "error_code",
        "flags",
    )
    list_filter = ("direction", "message_type", FrameActionFilter, FrameErrorFilter)
    search_fields = ("=identity", "=message_id")
    list_select_related = ("charge_point",)
    date_hierarchy = "created_at"
    show_full_result_count = False
    readonly_fields = [f.name for f in Frame._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(RemoteCommand)
class RemoteCommandAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "charge_point",
        "action",
        "outcome",
        "error_code",
        "latency_ms",
        "requester",
    )
    list_filter = ("outcome", "action")
    search_fields = ("charge_point__identity", "message_id")
    list_select_related = ("charge_point", "requested_by", "requested_by_api_key")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in RemoteCommand._meta.fields]

    @admin.display(description="requested by")
    def requester(self, obj: RemoteCommand) -> str:
        return obj.requester or "-"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ConnectionAttempt)
class ConnectionAttemptAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "identity",
        "remote_addr",
        "outcome",
        "reason",
        "subprotocols",
    )
    list_filter = ("outcome", "reason")
    search_fields = ("identity", "remote_addr")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in ConnectionAttempt._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(TransactionEvent)
class TransactionEventAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "charge_point",
        "kind",
        "transaction_ref",
        "session",
        "reconciled",
    )
    list_filter = ("kind", "reconciled")
    search_fields = ("charge_point__identity", "=transaction_ref")
    list_select_related = ("charge_point",)
    raw_id_fields = ("charge_point", "session")
    readonly_fields = (
        "kind",
        "charge_point",
        "session",
        "transaction_ref",
        "message_id",
        "payload",
        "created_at",
    )


# --- Charge points: passwords, commands, energy scale -------------------------


class ChargePointPasswordForm(forms.ModelForm):
    new_password = forms.CharField(
        required=False,
        strip=False,
        min_length=16,
        max_length=40,
        widget=forms.PasswordInput(render_value=False),
        help_text=(
            "Set a password of 16 to 40 characters (stored hashed), or leave "
            "empty and use 'Generate a new password' on the page."
        ),
    )

    class Meta:
        model = ChargePoint
        fields = (
            "identity",
            "site",
            "vendor",
            "model",
            "serial_number",
            "firmware_version",
            "protocol",
            "registration_status",
            "energy_scale",
        )


def _command_action(action: str, payload: dict, description: str):
    def run(modeladmin, request, queryset):
        if not request.user.has_perm(SEND_PERMISSION):
            raise PermissionDenied
        for charge_point in queryset:
            result = command_send(
                charge_point=charge_point,
                action=action,
                payload=payload,
                requested_by=request.user,
            )
            level = messages.SUCCESS if result.ok else messages.ERROR
            modeladmin.message_user(
                request, f"{charge_point}: {result.describe()}", level
            )

    run.__name__ = f"send_{action.lower()}_{'_'.join(map(str, payload.values()))}"
    run.short_description = description
    run.allowed_permissions = ("send_command",)
    return run


class OcppChargePointAdmin(ChargePointAdmin):
    form = ChargePointPasswordForm
    readonly_fields = (
        *ChargePointAdmin.readonly_fields,
        "password_state",
        "frames_link",
        "charge_box_serial_number",
        "flags",
        "capabilities",
        "malformed_frames",
        "last_connect_error",
    )
    actions = [
        _command_action("Reset", {"type": "Soft"}, "Reset (soft)"),
        _command_action("Reset", {"type": "Hard"}, "Reset (hard)"),
        _command_action("UnlockConnector", {"connectorId": 1}, "Unlock connector 1"),
        _command_action("ClearCache", {}, "Clear authorization cache"),
        _command_action(
            "TriggerMessage",
            {"requestedMessage": "StatusNotification"},
            "Ask for status",
        ),
        _command_action(
            "ChangeAvailability",
            {"connectorId": 0, "type": "Inoperative"},
            "Make inoperative",
        ),
        _command_action(
            "ChangeAvailability",
            {"connectorId": 0, "type": "Operative"},
            "Make operative",
        ),
        _command_action("GetConfiguration", {}, "Read configuration"),
    ]

    def has_send_command_permission(self, request):
        return request.user.has_perm(SEND_PERMISSION)

    @admin.display(description="password")
    def password_state(self, obj: ChargePoint) -> str:
        if obj.pk is None:
            return "-"
        url = reverse("admin:stations_chargepoint_password", args=[obj.pk])
        state = "set" if obj.password_hash else "not set"
        return format_html(
            '{} &middot; <a class="button" href="{}">Generate a new password</a>',
            state,
            url,
        )

    @admin.display(description="frame log")
    def frames_link(self, obj: ChargePoint) -> str:
        if obj.pk is None:
            return "-"
        url = reverse("admin:ocpp_bridge_frame_changelist")
        return format_html(
            '<a href="{}?charge_point__id__exact={}">frames</a> &middot; '
            '<a href="{}">on the station page</a>',
            url,
            obj.pk,
            reverse("ocpp_frame_log", args=[obj.identity]),
        )

    def save_model(self, request, obj, form, change):
        scale_changed = change and "energy_scale" in form.changed_data
        super().save_model(request, obj, form, change)
        password = form.cleaned_data.get("new_password")
        if password:
            try:
                charge_point_password_set(charge_point=obj, password=password)
            except ValidationError as exc:
                self.message_user(request, "; ".join(exc.messages), messages.ERROR)
            else:
                self.message_user(request, "Password set.", messages.SUCCESS)
        if scale_changed:
            count = meter_samples_renormalise(charge_point=obj)
            self.message_user(
                request, f"{count} meter samples recomputed with the new scale."
            )

    def get_urls(self):
        return [
            path(
                "<int:pk>/password/",
                self.admin_site.admin_view(self.password_view),
                name="stations_chargepoint_password",
            ),
            *super().get_urls(),
        ]

    def password_view(self, request, pk: int):
        """Generate a password on POST and show it once; never stored in clear."""
        charge_point = get_object_or_404(ChargePoint, pk=pk)
        if not self.has_change_permission(request, charge_point):
            raise PermissionDenied
        password = None
        if request.method == "POST":
            password = charge_point_password_set(charge_point=charge_point)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": charge_point,
            "title": f"Password of {charge_point.identity}",
            "password": password,
        }
        return TemplateResponse(
            request, "admin/ocpp_bridge/charge_point_password.html", context
        )


admin.site.unregister(ChargePoint)
admin.site.register(ChargePoint, OcppChargePointAdmin)


@admin.action(description="Remote stop (RemoteStopTransaction)")
def remote_stop(modeladmin, request, queryset):
    if not request.user.has_perm(SEND_PERMISSION):
        raise PermissionDenied
    for session in queryset.filter(stopped_at__isnull=True).select_related(
        "charge_point"
    ):
        result = command_send(
            charge_point=session.charge_point,
            action="RemoteStopTransaction",
            payload={"transactionId": session.pk},
            requested_by=request.user,
        )
        level = messages.SUCCESS if result.ok else messages.ERROR
        modeladmin.message_user(
            request, f"Session {session.pk}: {result.describe()}", level
        )


class OcppChargingSessionAdmin(ChargingSessionAdmin):
    actions = [remote_stop]


admin.site.unregister(ChargingSession)
admin.site.register(ChargingSession, OcppChargingSessionAdmin)
