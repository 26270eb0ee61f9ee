"""Reads for the frame log and command history pages."""

from django.db.models import Q, QuerySet

from ocpp_bridge.models import Frame, RemoteCommand
from stations.models import ChargePoint


def frame_list(
    *,
    charge_point: ChargePoint,
    direction: str = "",
    action: str = "",
    errors_only: bool = False,
    message_id: str = "",
) -> QuerySet[Frame]:
    frames = Frame.objects.filter(charge_point=charge_point)
    if direction:
        frames = frames.filter(direction=direction)
    if action:
        frames = frames.filter(action=action)
    if message_id:
        frames = frames.filter(message_id=message_id)
    if errors_only:
        frames = frames.filter(~Q(error_code="") | ~Q(flags=[]))
    return frames.order_by("-created_at", "-id")


def frame_actions(*, charge_point: ChargePoint) -> list[str]:
    """Actions seen in this charger's recent frames, for the filter menu."""
    recent = (
        Frame.objects.filter(charge_point=charge_point)
        .exclude(action="")
        .order_by("-created_at")
        .values_list("action", flat=True)[:2000]
    )
    return sorted(set(recent))


def command_list_recent(
    *, charge_point: ChargePoint, limit: int = 10
) -> list[RemoteCommand]:
    return list(
        RemoteCommand.objects.filter(charge_point=charge_point)
        .select_related("requested_by", "requested_by_api_key")
        .order_by("-created_at")[:limit]
    )
