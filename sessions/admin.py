from django.contrib import admin
from django.db.models import Count

from sessions.models import ChargingSession, Fleet, IdToken, MeterSample, Vehicle


class VehicleInline(admin.TabularInline):
    model = Vehicle
    fields = ("name", "make", "vehicle_model", "battery_capacity_kwh")
    show_change_link = True
    extra = 0


@admin.register(Fleet)
class FleetAdmin(admin.ModelAdmin):
    list_display = ("name", "site", "vehicle_count")
    search_fields = ("name", "description")
    list_filter = ("site",)
    list_select_related = ("site",)
    inlines = [VehicleInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_vehicles=Count("vehicles"))

    @admin.display(description="vehicles", ordering="_vehicles")
    def vehicle_count(self, obj: Fleet) -> int:
        return obj._vehicles


class IdTokenInline(admin.TabularInline):
    model = IdToken
    fields = ("value", "kind", "status", "expires_at", "owner")
    extra = 0


@admin.register(Vehicle)
class VehicleAdmin(admin.ModelAdmin):
    list_display = ("name", "fleet", "make", "vehicle_model", "battery_capacity_kwh")
    list_filter = ("fleet", "make")
    search_fields = ("name", "make", "vehicle_model", "external_id")
    list_select_related = ("fleet",)
    inlines = [IdTokenInline]


@admin.register(IdToken)
class IdTokenAdmin(admin.ModelAdmin):
    list_display = ("value", "kind", "status", "expires_at", "owner", "vehicle")
    list_filter = ("status", "kind")
    search_fields = ("value", "owner", "vehicle__name")
    list_select_related = ("vehicle",)
    autocomplete_fields = ("vehicle",)


class MeterSampleInline(admin.TabularInline):
    model = MeterSample
    fields = (
        "timestamp",
        "measurand",
        "phase",
        "raw_value",
        "unit",
        "value",
        "normalised_unit",
        "flags",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False
    max_num = 0
    ordering = ("timestamp",)

    def get_queryset(self, request):
        # A long session has thousands of samples; the page shows the first 200.
        qs = super().get_queryset(request)
        ids = list(qs.values_list("pk", flat=True)[:200])
        return qs.filter(pk__in=ids)


@admin.register(ChargingSession)
class ChargingSessionAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "charge_point",
        "connector_number",
        "id_tag",
        "started_at",
        "stopped_at",
        "duration_display",
        "energy_kwh_display",
        "source",
        "is_unmatched",
    )
    list_filter = (
        "source",
        "is_unmatched",
        "timestamp_zone_assumed",
        "charge_point__site",
    )
    search_fields = ("id_tag", "charge_point__identity", "external_id")
    list_select_related = ("charge_point",)
    date_hierarchy = "started_at"
    raw_id_fields = ("charge_point", "connector", "id_token", "vehicle")
    readonly_fields = (
        "created_at",
        "updated_at",
        "energy_kwh_display",
        "duration_display",
    )
    inlines = [MeterSampleInline]
    show_full_result_count = False

    @admin.display(description="energy (kWh)", ordering="energy_wh")
    def energy_kwh_display(self, obj: ChargingSession) -> str:
        return "-" if obj.energy_wh is None else f"{obj.energy_wh / 1000:.3f}"

    @admin.display(description="duration")
    def duration_display(self, obj: ChargingSession) -> str:
        if obj.duration is None:
            return "active" if obj.stopped_at is None else "-"
        minutes = int(obj.duration.total_seconds() // 60)
        return f"{minutes // 60}h {minutes % 60:02d}m"


@admin.register(MeterSample)
class MeterSampleAdmin(admin.ModelAdmin):
    list_display = (
        "timestamp",
        "charge_point",
        "session",
        "measurand",
        "phase",
        "raw_value",
        "unit",
        "value",
        "normalised_unit",
    )
    list_filter = ("measurand", "unit")
    search_fields = ("charge_point__identity",)
    list_select_related = ("charge_point",)
    raw_id_fields = ("session", "charge_point")
    show_full_result_count = False
