from django.contrib import admin
from django.db.models import Count

from stations.alerts import alert_acknowledge
from stations.models import Alert, ChargePoint, Connector, Site, StatusEvent


class ChargePointInline(admin.TabularInline):
    model = ChargePoint
    fields = ("identity", "vendor", "model", "status", "is_connected", "last_seen_at")
    readonly_fields = ("status", "is_connected", "last_seen_at")
    show_change_link = True
    extra = 0


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "code",
        "time_zone",
        "grid_capacity_kw",
        "charge_point_count",
    )
    search_fields = ("name", "code", "address")
    list_filter = ("time_zone",)
    prepopulated_fields = {"code": ("name",)}
    inlines = [ChargePointInline]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(_charge_points=Count("charge_points"))
        )

    @admin.display(description="charge points", ordering="_charge_points")
    def charge_point_count(self, obj: Site) -> int:
        return obj._charge_points


class ConnectorInline(admin.TabularInline):
    model = Connector
    fields = ("number", "status", "error_code", "max_power_w", "status_updated_at")
    readonly_fields = ("status", "error_code", "status_updated_at")
    extra = 0


@admin.register(ChargePoint)
class ChargePointAdmin(admin.ModelAdmin):
    list_display = (
        "identity",
        "site",
        "vendor",
        "model",
        "firmware_version",
        "registration_status",
        "status",
        "is_connected",
        "last_seen_at",
    )
    list_filter = ("site", "registration_status", "status", "is_connected", "vendor")
    search_fields = ("identity", "serial_number", "vendor", "model")
    list_select_related = ("site",)
    readonly_fields = (
        "status",
        "error_code",
        "is_connected",
        "last_seen_at",
        "last_boot_at",
        "last_heartbeat_at",
        "created_at",
    )
    exclude = ("password_hash",)
    inlines = [ConnectorInline]


@admin.register(Connector)
class ConnectorAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "charge_point",
        "number",
        "status",
        "error_code",
        "max_power_w",
    )
    list_filter = ("status", "charge_point__site")
    search_fields = ("charge_point__identity",)
    list_select_related = ("charge_point",)


@admin.register(StatusEvent)
class StatusEventAdmin(admin.ModelAdmin):
    list_display = (
        "timestamp",
        "charge_point",
        "connector_number",
        "status",
        "error_code",
        "timestamp_zone_assumed",
    )
    list_filter = (
        "status",
        "error_code",
        "timestamp_zone_assumed",
        "charge_point__site",
    )
    search_fields = ("charge_point__identity", "info", "vendor_error_code")
    list_select_related = ("charge_point",)
    date_hierarchy = "timestamp"
    readonly_fields = [f.name for f in StatusEvent._meta.fields]


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = (
        "opened_at",
        "severity",
        "kind",
        "subject",
        "site",
        "resolved_at",
        "acknowledged_at",
        "acknowledged_by",
    )
    list_filter = (
        ("resolved_at", admin.EmptyFieldListFilter),
        "kind",
        "severity",
        "site",
    )
    search_fields = ("subject", "message", "charge_point__identity")
    list_select_related = ("site", "charge_point", "acknowledged_by")
    date_hierarchy = "opened_at"
    readonly_fields = (
        "kind",
        "subject",
        "severity",
        "message",
        "site",
        "charge_point",
        "opened_at",
        "resolved_at",
        "acknowledged_at",
        "acknowledged_by",
    )
    actions = ("acknowledge",)

    def has_add_permission(self, request) -> bool:
        # Alerts come from the portal's checks, not from people.
        return False

    @admin.action(description="Acknowledge the selected alerts")
    def acknowledge(self, request, queryset) -> None:
        count = 0
        for alert in queryset.filter(acknowledged_at__isnull=True):
            alert_acknowledge(alert=alert, user=request.user)
            count += 1
        self.message_user(request, f"{count} alert(s) acknowledged.")
