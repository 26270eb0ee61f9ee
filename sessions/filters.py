"""The session filter set: shared by the session list, its CSV export and the API."""

import django_filters
from django import forms
from django.db.models import Q, QuerySet

from sessions.models import ChargingSession
from sessions.selectors import local_day_bounds
from stations.models import ChargePoint, Site


class ChargingSessionFilterSet(django_filters.FilterSet):
    """Filter sessions by site, charger, token and a range of local dates.

    Dates are calendar days in each session's site time zone, the way the pages
    show session times: ``date_from=2019-06-01`` at a Pasadena site starts at
    midnight Pacific time. Both ends are inclusive.
    """

    site = django_filters.ModelChoiceFilter(
        field_name="charge_point__site",
        queryset=Site.objects.only("id", "code", "name").order_by("name"),
        to_field_name="code",
        label="Site",
        empty_label="All sites",
        help_text="Site code, e.g. caltech.",
    )
    charge_point = django_filters.ModelChoiceFilter(
        field_name="charge_point",
        queryset=ChargePoint.objects.only("id", "identity").order_by("identity"),
        to_field_name="identity",
        label="Charger",
        # A text box with suggestions: a network has hundreds of chargers, too
        # many for a drop-down (and rendering one cost more than the queries).
        widget=forms.TextInput(
            attrs={"list": "charger-identities", "placeholder": "All chargers"}
        ),
        help_text="Charge point identity.",
    )
    token = django_filters.CharFilter(
        method="filter_token",
        label="Token",
        help_text="idTag or token value (case does not matter, as in OCPP).",
    )
    date_from = django_filters.DateFilter(
        method="filter_date_from",
        label="From",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="First local day (YYYY-MM-DD), in the site's time zone.",
    )
    date_to = django_filters.DateFilter(
        method="filter_date_to",
        label="To",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Last local day (YYYY-MM-DD), inclusive.",
    )

    class Meta:
        model = ChargingSession
        fields = ["site", "charge_point", "token", "date_from", "date_to"]

    def filter_token(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        return queryset.filter(
            Q(id_token__value__iexact=value) | Q(id_tag__iexact=value)
        )

    def filter_date_from(self, queryset: QuerySet, name: str, value) -> QuerySet:
        condition = Q(pk__in=[])
        for site in self._sites():
            start, _ = local_day_bounds(value, value, site.tz)
            condition |= Q(charge_point__site_id=site.pk, started_at__gte=start)
        return queryset.filter(condition)

    def filter_date_to(self, queryset: QuerySet, name: str, value) -> QuerySet:
        condition = Q(pk__in=[])
        for site in self._sites():
            _, end = local_day_bounds(value, value, site.tz)
            condition |= Q(charge_point__site_id=site.pk, started_at__lt=end)
        return queryset.filter(condition)

    def _sites(self) -> list[Site]:
        if not hasattr(self, "_site_zones"):
            self._site_zones = list(Site.objects.only("id", "time_zone"))
        return self._site_zones
