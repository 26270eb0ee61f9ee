"""The alerts page and the acknowledge button."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from stations.alerts import alert_acknowledge, alert_list_open, alert_list_recent
from stations.models import Alert


@login_required
def alert_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "stations/alerts.html",
        {
            "open_alerts": alert_list_open(),
            "recent_alerts": alert_list_recent(),
        },
    )


@login_required
@require_POST
def alert_acknowledge_view(request: HttpRequest, pk: int) -> HttpResponse:
    alert = get_object_or_404(Alert, pk=pk)

    alert_acknowledge(alert=alert, user=request.user)

    messages.success(request, f"Acknowledged: {alert}")
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = "alert_list"
    return redirect(next_url)
