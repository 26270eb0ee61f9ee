"""Operator pages of the network: the dashboard, the station list, a station."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from forecasting.selectors import tomorrow_energy_by_site
from sessions import selectors as session_selectors
from stations import selectors
from stations.alerts import alert_list_open
from stations.models import ChargePoint, Site


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    sites = list(Site.objects.all())
    latest = session_selectors.latest_data()
    data_day = latest.day if latest else None

    chargers = session_selectors.charge_point_ids_by_site()
    figures = session_selectors.session_figures_by_site(
        sites=sites, chargers=chargers, now=now, data_day=data_day
    )
    if data_day is not None:
        utilisation = session_selectors.utilisation_by_site(
            sites=sites,
            chargers=chargers,
            last_day=data_day,
            capacity=selectors.connector_capacity_by_site(),
        )
        for site_id, share in utilisation.items():
            figures[site_id].utilisation = share
        daily = session_selectors.daily_energy(
            sites=sites, last_day=data_day, days=session_selectors.DAILY_ENERGY_DAYS
        )
    else:
        daily = None

    totals = session_selectors.SiteFigures()
    for site_figures in figures.values():
        totals.add(site_figures)
    chart = None
    if daily is not None:
        chart = {
            "labels": [d.isoformat() for d in daily.days],
            "datasets": [
                {"label": site.name, "data": daily.kwh_by_site[site.pk]}
                for site in sites
            ],
        }
    return render(
        request,
        "stations/dashboard.html",
        {
            "now": now,
            "latest": latest,
            "status": selectors.status_counts(),
            "site_rows": [(site, figures[site.pk]) for site in sites],
            "totals": totals,
            "chart": chart,
            "chart_days": session_selectors.DAILY_ENERGY_DAYS,
            "utilisation_days": session_selectors.UTILISATION_DAYS,
            "alerts": alert_list_open(),
            "tomorrow_rows": tomorrow_energy_by_site(),
        },
    )


@login_required
def station_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "stations/station_list.html",
        {"sites": selectors.site_overview_list()},
    )


@login_required
def station_detail(request: HttpRequest, identity: str) -> HttpResponse:
    try:
        charge_point = selectors.charge_point_get(identity=identity)
    except ChargePoint.DoesNotExist as exc:
        raise Http404(f"No charge point {identity!r}.") from exc

    detail = selectors.charge_point_detail(charge_point=charge_point)
    return render(
        request,
        "stations/station_detail.html",
        {
            "charge_point": charge_point,
            "site": charge_point.site,
            "detail": detail,
            "alerts": alert_list_open(charge_point=charge_point),
            "alerts_title": "Open alerts of this charger",
        },
    )
