import django_filters

from api_access.filters import (
    BoundedDateFilter,
    LeanFilterSetMixin,
    UtcDateTimeFilter,
)
from sessions.filters import ChargingSessionFilterSet
from sessions.models import ChargingSession, Fleet, MeterSample, Vehicle


class ChargingSessionApiFilterSet(LeanFilterSetMixin, ChargingSessionFilterSet):
    """The session list page's filters (site, charger, token, local days) plus
    vehicle, fleet, a range of instants and activity.

    ``date_from``/``date_to`` are local days at each session's site, both
    inclusive; ``started_after`` (inclusive) and ``started_before`` (exclusive)
    are ISO 8601 instants (give an offset; a time without one is read as UTC).
    """

    # The page's local-day filters, with days at the very ends of the calendar
    # refused (400) instead of overflowing when turned into bounds.
    date_from = BoundedDateFilter(
        method="filter_date_from",
        help_text="First local day (YYYY-MM-DD), in the site's time zone.",
    )
    date_to = BoundedDateFilter(
        method="filter_date_to",
        help_text="Last local day (YYYY-MM-DD), inclusive.",
    )
    vehicle = django_filters.ModelChoiceFilter(
        queryset=Vehicle.objects.only("id"), help_text="Vehicle id."
    )
    fleet = django_filters.ModelChoiceFilter(
        field_name="vehicle__fleet",
        queryset=Fleet.objects.only("id"),
        help_text="Fleet id: sessions of the fleet's vehicles.",
    )
    started_after = UtcDateTimeFilter(
        field_name="started_at",
        lookup_expr="gte",
        help_text="Sessions started at or after this instant.",
    )
    started_before = UtcDateTimeFilter(
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

    class Meta(ChargingSessionFilterSet.Meta):
        fields = [
            *ChargingSessionFilterSet.Meta.fields,
            "vehicle",
            "fleet",
            "started_after",
            "started_before",
            "active",
            "source",
        ]


class MeterSampleFilterSet(LeanFilterSetMixin, django_filters.FilterSet):
    measurand = django_filters.CharFilter(
        help_text="e.g. Energy.Active.Import.Register, Power.Active.Import."
    )
    since = UtcDateTimeFilter(field_name="timestamp", lookup_expr="gte")
    until = UtcDateTimeFilter(field_name="timestamp", lookup_expr="lt")

    class Meta:
        model = MeterSample
        fields = ["measurand", "since", "until"]
