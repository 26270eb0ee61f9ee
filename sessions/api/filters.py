import django_filters
from django.db.models import Q, QuerySet

from sessions.models import ChargingSession, Fleet, MeterSample, Vehicle
from stations.models import ChargePoint, Site


class ChargingSessionApiFilterSet(django_filters.FilterSet):
    """Sessions by site, charger, token, vehicle, fleet, time range and activity.

    The time range selects sessions by their start: ``started_after`` inclusive,
    ``started_before`` exclusive, both ISO 8601 instants (give an offset; a time
    without one is read as UTC).
    """

    site = django_filters.ModelChoiceFilter(
        field_name="charge_point__site",
        queryset=Site.objects.only("id", "code"),
        to_field_name="code",
        help_text="Site code, e.g. caltech.",
    )
    charge_point = django_filters.ModelChoiceFilter(
        queryset=ChargePoint.objects.only("id", "identity"),
        to_field_name="identity",
        help_text="Charge point identity.",
    )
    token = django_filters.CharFilter(
        method="filter_token",
        max_length=20,
        help_text="idTag or token value (case does not matter, as in OCPP).",
    )
    vehicle = django_filters.ModelChoiceFilter(
        queryset=Vehicle.objects.only("id"), help_text="Vehicle id."
    )
    fleet = django_filters.ModelChoiceFilter(
        field_name="vehicle__fleet",
        queryset=Fleet.objects.only("id"),
        help_text="Fleet id: sessions of the fleet's vehicles.",
    )
    started_after = django_filters.IsoDateTimeFilter(
        field_name="started_at",
        lookup_expr="gte",
        help_text="Sessions started at or after this instant.",
    )
    started_before = django_filters.IsoDateTimeFilter(
        field_name="started_at",
        lookup_expr="lt",
        help_text="Sessions started before this instant.",
    )
    active = django_filters.BooleanFilter(
        field_name="stopped_at",
        lookup_expr="isnull",
        help_text="true: not stopped yet; false: stopped.",
    )
    source = django_filters.ChoiceFilter(
        choices=ChargingSession._meta.get_field("source").choices
    )

    class Meta:
        model = ChargingSession
        fields = [
            "site",
            "charge_point",
            "token",
            "vehicle",
            "fleet",
            "started_after",
            "started_before",
            "active",
            "source",
        ]

    def filter_token(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        return queryset.filter(
            Q(id_token__value__iexact=value) | Q(id_tag__iexact=value)
        )


class MeterSampleFilterSet(django_filters.FilterSet):
    measurand = django_filters.CharFilter(
        help_text="e.g. Energy.Active.Import.Register, Power.Active.Import."
    )
    since = django_filters.IsoDateTimeFilter(field_name="timestamp", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="timestamp", lookup_expr="lt")

    class Meta:
        model = MeterSample
        fields = ["measurand", "since", "until"]
