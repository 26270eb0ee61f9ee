import django_filters

from api_access.filters import UtcDateTimeFilter
from stations.models import ChargePoint, ChargePointStatus, Connector, Site, StatusEvent


def _sites():
    return Site.objects.only("id", "code")


def _charge_points():
    return ChargePoint.objects.only("id", "identity")


class ChargePointFilterSet(django_filters.FilterSet):
    site = django_filters.ModelChoiceFilter(
        queryset=_sites(), to_field_name="code", help_text="Site code."
    )
    status = django_filters.ChoiceFilter(
        choices=ChargePointStatus.choices, help_text="Status of the charger itself."
    )
    is_connected = django_filters.BooleanFilter()

    class Meta:
        model = ChargePoint
        fields = ["site", "status", "is_connected"]


class _OfAChargePoint(django_filters.FilterSet):
    """Filters of rows that belong to a charge point: by its site or by itself."""

    site = django_filters.ModelChoiceFilter(
        field_name="charge_point__site",
        queryset=_sites(),
        to_field_name="code",
        help_text="Site code.",
    )
    charge_point = django_filters.ModelChoiceFilter(
        queryset=_charge_points(),
        to_field_name="identity",
        help_text="Charge point identity.",
    )


class ConnectorFilterSet(_OfAChargePoint):
    status = django_filters.ChoiceFilter(choices=ChargePointStatus.choices)

    class Meta:
        model = Connector
        fields = ["site", "charge_point", "status"]


class StatusEventFilterSet(_OfAChargePoint):
    connector_number = django_filters.NumberFilter(
        min_value=0, max_value=2**31 - 1, help_text="0 is the charger itself."
    )
    status = django_filters.CharFilter()
    since = UtcDateTimeFilter(
        field_name="timestamp",
        lookup_expr="gte",
        help_text="Events at or after this time (ISO 8601 with offset).",
    )
    until = UtcDateTimeFilter(
        field_name="timestamp",
        lookup_expr="lt",
        help_text="Events before this time (ISO 8601 with offset).",
    )

    class Meta:
        model = StatusEvent
        fields = ["site", "charge_point", "connector_number", "status"]
