from collections.abc import Iterable
from datetime import datetime, tzinfo

from django.utils import timezone
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


METER_SAMPLE_COLUMNS = (
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
)


class MeterSampleSerializer(serializers.ModelSerializer):
    class Meta:
        model = MeterSample
        fields = list(METER_SAMPLE_COLUMNS)


# --- Rows for the busiest lists ------------------------------------------------------
# A page of 50 sessions through ChargingSessionSerializer cost about 9 ms of CPU
# (DRF calls each of 25 fields of each row separately); the same page built from
# one values_list() query costs well under 1 ms. These functions give exactly the
# serializers' output (a test compares them on varied rows); the serializers stay
# the documented schema and serve single objects.


def _datetime_text(value: datetime | None, zone: tzinfo) -> str | None:
    """A datetime as DRF's DateTimeField writes it: ISO 8601 in the current zone."""
    if value is None:
        return None
    text = value.astimezone(zone).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


SESSION_LIST_COLUMNS = (
    "id",
    "charge_point__site__code",
    "charge_point__identity",
    "connector_number",
    "id_tag",
    "id_token_id",
    "vehicle_id",
    "vehicle__fleet_id",
    "started_at",
    "stopped_at",
    "done_charging_at",
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
)


def session_list_rows(rows: Iterable[tuple]) -> list[dict]:
    """Rows of ``values_list(*SESSION_LIST_COLUMNS)`` as ChargingSessionSerializer
    would write the sessions."""
    zone = timezone.get_current_timezone()
    out = []
    for (
        pk,
        site,
        charge_point,
        connector_number,
        id_tag,
        id_token,
        vehicle,
        fleet,
        started_at,
        stopped_at,
        done_charging_at,
        energy_wh,
        meter_start_wh,
        meter_stop_wh,
        stop_reason,
        source,
        external_id,
        requested_energy_wh,
        requested_departure_at,
        is_unmatched,
        timestamp_zone_assumed,
        flags,
    ) in rows:
        out.append(
            {
                "id": pk,
                "site": site,
                "charge_point": charge_point,
                "connector_number": connector_number,
                "id_tag": id_tag,
                "id_token": id_token,
                "vehicle": vehicle,
                "fleet": fleet,
                "started_at": _datetime_text(started_at, zone),
                "stopped_at": _datetime_text(stopped_at, zone),
                "done_charging_at": _datetime_text(done_charging_at, zone),
                "duration_s": None
                if stopped_at is None
                else (stopped_at - started_at).total_seconds(),
                "is_active": stopped_at is None,
                "energy_wh": energy_wh,
                "meter_start_wh": meter_start_wh,
                "meter_stop_wh": meter_stop_wh,
                "stop_reason": stop_reason,
                "source": source,
                "external_id": external_id,
                "requested_energy_wh": requested_energy_wh,
                "requested_departure_at": _datetime_text(requested_departure_at, zone),
                "is_unmatched": is_unmatched,
                "timestamp_zone_assumed": timestamp_zone_assumed,
                "flags": flags,
            }
        )
    return out


def meter_sample_rows(rows: Iterable[dict]) -> list[dict]:
    """Rows of ``values(*METER_SAMPLE_COLUMNS)`` (dicts: the cursor pagination
    reads its position from them) as MeterSampleSerializer would write them.
    New dicts: the pagination builds its next cursor from the rows afterwards."""
    zone = timezone.get_current_timezone()
    return [
        {**row, "timestamp": _datetime_text(row["timestamp"], zone)} for row in rows
    ]
