from rest_framework import serializers

from stations.models import ChargePoint, Connector, Site, StatusEvent


class SiteSerializer(serializers.ModelSerializer):
    charge_point_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Site
        fields = [
            "code",
            "name",
            "time_zone",
            "address",
            "latitude",
            "longitude",
            "grid_capacity_kw",
            "charge_point_count",
            "created_at",
        ]


class ConnectorNestedSerializer(serializers.ModelSerializer):
    class Meta:
        model = Connector
        fields = ["id", "number", "status", "error_code", "max_power_w"]
        fields += ["status_updated_at"]


class ConnectorSerializer(serializers.ModelSerializer):
    charge_point = serializers.SlugRelatedField(slug_field="identity", read_only=True)

    class Meta:
        model = Connector
        fields = [
            "id",
            "charge_point",
            "number",
            "status",
            "error_code",
            "max_power_w",
            "status_updated_at",
        ]


class ChargePointSerializer(serializers.ModelSerializer):
    """A charger with its live state: connection, last contact, status per
    connector (connector 0, the charger itself, is ``status``)."""

    site = serializers.SlugRelatedField(slug_field="code", read_only=True)
    connectors = ConnectorNestedSerializer(many=True, read_only=True)
    active_session_count = serializers.IntegerField(
        read_only=True, help_text="Sessions started and not yet stopped."
    )

    class Meta:
        model = ChargePoint
        fields = [
            "identity",
            "site",
            "vendor",
            "model",
            "serial_number",
            "firmware_version",
            "protocol",
            "registration_status",
            "status",
            "error_code",
            "is_connected",
            "last_seen_at",
            "last_boot_at",
            "last_heartbeat_at",
            "active_session_count",
            "connectors",
        ]


class StatusEventSerializer(serializers.ModelSerializer):
    charge_point = serializers.SlugRelatedField(slug_field="identity", read_only=True)

    class Meta:
        model = StatusEvent
        fields = [
            "id",
            "charge_point",
            "connector_number",
            "status",
            "error_code",
            "info",
            "vendor_id",
            "vendor_error_code",
            "timestamp",
            "raw_timestamp",
            "timestamp_zone_assumed",
            "flags",
            "received_at",
        ]
