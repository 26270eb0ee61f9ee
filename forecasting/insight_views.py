"""The fleet insights page: the same selector as GET /api/ml/fleet-insights/."""

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from forecasting.api.serializers import default_range
from forecasting.insights import (
    MAX_RANGE_DAYS,
    fleet_insights_cached,
    latest_session_day,
)
from sessions.models import Fleet


class FleetInsightsForm(forms.Form):
    date_from = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    fleet = forms.ModelMultipleChoiceField(
        queryset=Fleet.objects.order_by("name"), required=False
    )

    def clean(self) -> dict:
        data = super().clean()
        date_from, date_to = data.get("date_from"), data.get("date_to")
        if date_from and date_to and date_to < date_from:
            self.add_error("date_to", "The last day is before the first.")
        elif date_from and date_to and (date_to - date_from).days >= MAX_RANGE_DAYS:
            self.add_error("date_to", f"At most {MAX_RANGE_DAYS} days at once.")
        return data


@login_required
def fleet_insights_page(request: HttpRequest) -> HttpResponse:
    form = FleetInsightsForm(request.GET or None)
    insights = None
    if not request.GET or form.is_valid():
        data = form.cleaned_data if request.GET else {}
        latest = latest_session_day() or timezone.now().date()
        date_from, date_to = default_range(data, latest)
        fleets = data.get("fleet")
        insights = fleet_insights_cached(
            date_from=date_from,
            date_to=date_to,
            fleet_ids=[f.pk for f in fleets] if fleets else None,
        )

    return render(
        request,
        "forecasting/fleet_insights.html",
        {"form": form, "insights": insights},
        status=200 if insights is not None else 400,
    )
