"""Operator pages of charging sessions: list with filters, CSV export, one session."""

from django.contrib.auth.decorators import login_required
from django.core.handlers.asgi import ASGIRequest
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    StreamingHttpResponse,
)
from django.shortcuts import render
from django.utils import timezone

from sessions import selectors
from sessions.exports import session_csv_lines, session_csv_lines_async
from sessions.filters import ChargingSessionFilterSet
from sessions.models import ChargingSession

# Rows per page of the session list.
SESSIONS_PER_PAGE = 50


@login_required
def session_list(request: HttpRequest) -> HttpResponse:
    filterset = ChargingSessionFilterSet(
        request.GET, queryset=ChargingSession.objects.all()
    )
    page = selectors.session_page(
        queryset=filterset.qs,
        number=request.GET.get("page"),
        per_page=SESSIONS_PER_PAGE,
    )
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "sessions/session_list.html",
        {
            "filter": filterset,
            "page": page,
            "query": query.urlencode(),
        },
    )


@login_required
def session_export(request: HttpRequest) -> HttpResponse:
    filterset = ChargingSessionFilterSet(
        request.GET, queryset=ChargingSession.objects.all()
    )
    if not filterset.is_valid():
        return HttpResponseBadRequest(
            "Invalid filter: " + filterset.errors.as_text(),
            content_type="text/plain; charset=utf-8",
        )

    if isinstance(request, ASGIRequest):
        content = session_csv_lines_async(queryset=filterset.qs)
    else:
        content = session_csv_lines(queryset=filterset.qs)
    response = StreamingHttpResponse(content, content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%dT%H%MZ")
    response["Content-Disposition"] = f'attachment; filename="sessions-{stamp}.csv"'
    return response


@login_required
def session_detail(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        session = selectors.session_get(pk=pk)
    except ChargingSession.DoesNotExist as exc:
        raise Http404(f"No session {pk}.") from exc

    curve = selectors.session_curve(session=session)
    site = session.charge_point.site
    chart = None
    if not curve.is_empty:
        chart = {
            "labels": [
                t.astimezone(site.tz).strftime("%Y-%m-%d %H:%M")
                for t in curve.timestamps
            ],
            "power_kw": curve.power_kw,
            "energy_kwh": curve.energy_kwh,
            "power_derived": curve.power_derived,
        }
    return render(
        request,
        "sessions/session_detail.html",
        {
            "session": session,
            "site": site,
            "curve": curve,
            "chart": chart,
            "average_power_kw": selectors.session_average_power_kw(session),
        },
    )
