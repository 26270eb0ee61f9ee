from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from sessions.models import ChargingSession, Fleet, IdToken, MeterSample, Vehicle
from stations.models import Site


class FleetSerializer(serializers.ModelSerializer):
    site = serializers.SlugRelatedField(
        slug_field="code",
        queryset=Site.objects.all(),
        allow_null=True,
        required=False,
        help_text="Code of the home site, or null.",
    )
    vehicle_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Fleet
        fields = ["id", "name", "site", "description", "vehicle_count", "created_at"]
        # Uniqueness is checked by the service, with the same message for races.
        extra_kwargs = {"name": {"validators": []}}


class VehicleSerializer(serializers.ModelSerializer):
    fleet = serializers.PrimaryKeyRelatedField(
        queryset=Fleet.objects.all(), allow_null=True, required=False
    )
    model = serializers.CharField(
        source="vehicle_model", max_length=100, required=False, allow_blank=True
    )

    class Meta:
        model = Vehicle
        fields = [
            "id",
            "fleet",
            "name",
            "make",
            "model",
            "battery_capacity_kwh",
            "external_id",
            "created_at",
        ]
        extra_kwargs = {
            "external_id": {"validators": []},
            "battery_capacity_kwh": {"min_value": 0},
        }


class IdTokenSerializer(serializers.ModelSerializer):
    vehicle = serializers.PrimaryKeyRelatedField(
        queryset=Vehicle.objects.all(), allow_null=True, required=False
    )

    class Meta:
        model = IdToken
        fields = [
            "id",
            "value",
            "kind",
            "status",
            "expires_at",
            "owner",
            "vehicle",
            "parent_id_tag",
            "created_at",
        ]
        read_only_fields = ["status"]


class IdTokenCreateSerializer(IdTokenSerializer):
    """A new token; status defaults to Accepted (block it afterwards if needed)."""

    class Meta(IdTokenSerializer.Meta):
        read_only_fields = []


class ChargingSessionSerializer(serializers.ModelSerializer):
    charge_point = serializers.SlugRelatedField(slug_field="identity", read_only=True)
    site = serializers.SerializerMethodField()
    fleet = serializers.SerializerMethodField()
    is_active = serializers.BooleanField(read_only=True)
    duration_s = serializers.SerializerMethodField()

    class Meta:
        model = ChargingSession
        fields = [
            "id",
            "site",
            "charge_point",
            "connector_number",
            "id_tag",
            "id_token",
            "vehicle",
            "fleet",
            "started_at",
            "stopped_at",
            "done_charging_at",
            "duration_s",
            "is_active",
            "energy_wh",
            "meter_start_wh",
            "meter_stop_wh",
            "stop_reason",
            "source",
            "external_id",
            "requested_energy_wh",
            "requested_departure_at",
            "is_unmatched",
            "timestamp_zone_assumed",
            "flags",
        ]

    @extend_schema_field(serializers.CharField())
    def get_site(self, obj: ChargingSession) -> str:
        return obj.charge_point.site.code

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_fleet(self, obj: ChargingSession) -> int | None:
        return None if obj.vehicle is None else obj.vehicle.fleet_id

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_duration_s(self, obj: ChargingSession) -> float | None:
        duration = obj.duration
        return None if duration is None else duration.total_seconds()


class MeterSampleSerializer(serializers.ModelSerializer):
    class Meta:
        model = MeterSample
        fields = [
            "id",
            "timestamp",
            "connector_number",
            "measurand",
            "phase",
            "location",
            "context",
            "unit",
            "raw_value",
            "value",
            "normalised_unit",
            "flags",
        ]
