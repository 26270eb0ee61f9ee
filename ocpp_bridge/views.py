"""Station-page views of the bridge: the frame log and remote command buttons."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from ocpp_bridge.commands import ACTIONS, command_send
from ocpp_bridge.forms import command_payload_from_form
from ocpp_bridge.models import CommandOutcome, Direction
from ocpp_bridge.selectors import command_list_recent, frame_actions, frame_list
from stations.models import ChargePoint

FRAMES_PER_PAGE = 100
SEND_PERMISSION = "ocpp_bridge.send_command"


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


@login_required
@require_GET
def frame_log(request: HttpRequest, identity: str) -> HttpResponse:
    charge_point = get_object_or_404(ChargePoint, identity=identity)
    direction = request.GET.get("direction", "")
    if direction not in Direction.values:
        direction = ""
    frames = frame_list(
        charge_point=charge_point,
        direction=direction,
        action=request.GET.get("action", "")[:64],
        errors_only=request.GET.get("errors") == "1",
        message_id=request.GET.get("message_id", "")[:64],
    )
    page = Paginator(frames, FRAMES_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "charge_point": charge_point,
        "page": page,
        "actions": frame_actions(charge_point=charge_point),
        "filters": request.GET,
    }
    template = (
        "ocpp_bridge/partials/frame_log.html"
        if _is_htmx(request)
        else "ocpp_bridge/frame_log_page.html"
    )
    return render(request, template, context)


@login_required
@require_POST
def command_post(request: HttpRequest, identity: str, action: str) -> HttpResponse:
    if not request.user.has_perm(SEND_PERMISSION):
        return HttpResponseForbidden("You may not send commands to chargers.")
    spec = ACTIONS.get(action)
    if spec is None:
        raise Http404("No such command.")
    charge_point = get_object_or_404(
        ChargePoint.objects.select_related("site"), identity=identity
    )

    payload, errors = command_payload_from_form(
        spec, request.POST, time_zone=charge_point.site.time_zone
    )
    if errors:
        detail = "; ".join(f"{name}: {text}" for name, text in errors.items())
        if _is_htmx(request):
            return render(
                request,
                "ocpp_bridge/partials/command_result.html",
                {"action": action, "spec": spec, "errors": errors},
                status=400,
            )
        messages.error(request, f"{spec.label}: {detail}")
        return _back(request, charge_point)

    result = command_send(
        charge_point=charge_point,
        action=action,
        payload=payload,
        requested_by=request.user,
    )

    status = 400 if result.outcome == CommandOutcome.INVALID else 200
    if _is_htmx(request):
        return render(
            request,
            "ocpp_bridge/partials/command_result.html",
            {"action": action, "spec": spec, "result": result},
            status=status,
        )
    level = messages.SUCCESS if result.ok else messages.ERROR
    messages.add_message(request, level, f"{spec.label}: {result.describe()}")
    return _back(request, charge_point)


def _back(request: HttpRequest, charge_point: ChargePoint) -> HttpResponse:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    try:
        return redirect(reverse("station_detail", args=[charge_point.identity]))
    except NoReverseMatch:
        return redirect(
            reverse("admin:stations_chargepoint_change", args=[charge_point.pk])
        )


def commands_context(charge_point: ChargePoint, user=None) -> dict:
    """What partials/commands.html needs; used by the template tag."""
    return {
        "charge_point": charge_point,
        "actions": ACTIONS,
        "recent_commands": command_list_recent(charge_point=charge_point),
        "can_send": bool(user and user.has_perm(SEND_PERMISSION)),
    }
