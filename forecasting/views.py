"""Forecast pages: the sites list and one site's forecast, history and scores."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from forecasting import selectors
from forecasting.models import BASELINE_LABEL, ForecastTask, ModelStatus, ModelVersion
from stations.models import Site


@login_required
def forecast_list(request: HttpRequest) -> HttpResponse:
    rows = selectors.tomorrow_energy_by_site()
    alerts = {
        row.site.pk: selectors.forecast_worse_alert(site=row.site) for row in rows
    }
    return render(
        request,
        "forecasting/forecast_list.html",
        {
            "rows": [(row, alerts[row.site.pk]) for row in rows],
            "baseline_label": BASELINE_LABEL,
        },
    )


def _label(hour, tz) -> str:
    return hour.astimezone(tz).strftime("%a %d %b %H:00")


def _chart_points(forecast, tz) -> dict:
    return {
        "hours": [_label(r.hour_start, tz) for r in forecast.rows],
        "value": [r.energy_kwh for r in forecast.rows],
        "p10": [r.p10 for r in forecast.rows],
        "p90": [r.p90 for r in forecast.rows],
        "plugged_in": [r.plugged_in for r in forecast.rows],
    }


@login_required
def forecast_site(request: HttpRequest, code: str) -> HttpResponse:
    site = get_object_or_404(Site, code=code)
    forecast = selectors.site_demand_forecast(site=site)
    history = selectors.forecast_history(site=site, days=14)
    versions = selectors.active_versions(site=site)
    candidates = (
        ModelVersion.objects.filter(site=site, status=ModelStatus.CANDIDATE)
        .defer("artifact")
        .order_by("-trained_at")[:4]
    )
    alert = selectors.forecast_worse_alert(site=site, task=ForecastTask.SITE_ENERGY)
    return render(
        request,
        "forecasting/forecast_site.html",
        {
            "site": site,
            "forecast": forecast,
            "tomorrow": selectors.tomorrow_energy(site=site),
            "next_chart": _chart_points(forecast, site.tz),
            "history_chart": {
                "hours": [_label(p.hour_start, site.tz) for p in history],
                "forecast": [p.forecast for p in history],
                "p10": [p.p10 for p in history],
                "p90": [p.p90 for p in history],
                "actual": [p.actual for p in history],
                "baseline": [p.baseline for p in history],
            },
            "history_count": len(history),
            "versions": versions,
            "candidates": candidates,
            "alert": alert,
            "baseline_label": BASELINE_LABEL,
        },
    )
