"""Remote commands over the API: one POST endpoint per OCPP 1.6 action.

The body is the OCPP payload (camelCase, as in the specification). The answer
maps the command's outcome to an HTTP status: the charger's answer 200, a
CallError 502, no answer in time 504, charger not connected 409, a payload the
action's schema refuses 400, an action the portal does not send 404.
"""

import logging

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, views
from rest_framework.request import Request
from rest_framework.response import Response

from api_access.models import ApiKey
from api_access.responses import error_body
from ocpp_bridge.api.schemas import ocpp16_schema
from ocpp_bridge.commands import ACTIONS, CommandResult, command_send
from stations.models import ChargePoint

logger = logging.getLogger(__name__)

# HTTP status per CommandResult.outcome (see the module docstring).
OUTCOME_STATUS = {
    "answered": 200,
    "invalid": 400,
    "not_connected": 409,
    "call_error": 502,
    "timeout": 504,
}

_OUTCOME_REASON = {
    "invalid": "The payload does not fit the {action} schema: {description}",
    "not_connected": "Charge point {identity} is not connected.",
    "call_error": "The charger answered {action} with CallError {code}: {description}",
    "timeout": "Charge point {identity} did not answer {action} in time.",
}


def command_response(
    *, result: CommandResult, action: str, charge_point: ChargePoint
) -> Response:
    """Shape a CommandResult as an HTTP answer (the error shape for failures)."""
    status = OUTCOME_STATUS.get(result.outcome)
    if status is None:
        # An outcome this endpoint does not know is a bug on the server side.
        raise exceptions.APIException(f"Unexpected command outcome {result.outcome}")

    if status == 200:
        return Response(
            {
                "action": action,
                "outcome": result.outcome,
                "command_id": result.command_id,
                "response": result.response,
            }
        )
    reason = _OUTCOME_REASON[result.outcome].format(
        action=action,
        identity=charge_point.identity,
        code=result.error_code or "",
        description=result.error_description or "",
    )
    body = error_body(status=status, code=result.outcome, reason=reason)
    body.update(
        action=action,
        command_id=result.command_id,
        error_code=result.error_code or None,
        error_description=result.error_description or None,
    )
    return Response(body, status=status)


class ChargePointCommandView(views.APIView):
    """POST an OCPP command to a charge point; subclassed once per action."""

    action: str = ""

    def post(self, request: Request, identity: str, action: str | None = None):
        action = action or self.action
        if action not in ACTIONS:
            raise exceptions.NotFound(
                f"Unknown command {action!r}. Commands: {', '.join(sorted(ACTIONS))}."
            )
        if "\x00" in identity:  # no id holds NUL; PostgreSQL cannot compare one
            raise exceptions.NotFound("No ChargePoint matches the given query.")
        charge_point = get_object_or_404(ChargePoint, identity__iexact=identity)
        payload = request.data
        if not isinstance(payload, dict):
            raise exceptions.ValidationError(
                {"non_field_errors": ["The body must be a JSON object (the payload)."]}
            )

        # A staff session is a user; a script's API key is the request's auth.
        user = request.user if getattr(request.user, "pk", None) else None
        api_key = request.auth if isinstance(request.auth, ApiKey) else None
        result = command_send(
            charge_point=charge_point,
            action=action,
            payload=dict(payload),
            requested_by=user,
            requested_by_api_key=api_key,
        )

        logger.info(
            "API command %s to %s: %s",
            action,
            charge_point.identity,
            result.outcome,
            extra={"charge_point": charge_point.identity, "command": result.command_id},
        )
        return command_response(result=result, action=action, charge_point=charge_point)


class UnknownCommandView(ChargePointCommandView):
    """Any other action name: 404 in the error shape (kept out of the schema)."""

    schema = None


def _answer_schema(action: str) -> dict:
    return {
        "type": "object",
        "properties": {
            "action": {"type": "string", "enum": [action]},
            "outcome": {"type": "string", "enum": ["answered"]},
            "command_id": {"type": "integer", "nullable": True},
            "response": ocpp16_schema(f"{action}Response"),
        },
        "required": ["action", "outcome", "response"],
    }


def _failure_schema(description: str) -> OpenApiResponse:
    return OpenApiResponse(
        response={
            "type": "object",
            "properties": {
                "status": {"type": "integer"},
                "code": {"type": "string"},
                "reason": {"type": "string"},
                "fields": {"type": "object"},
                "action": {"type": "string"},
                "command_id": {"type": "integer", "nullable": True},
                "error_code": {"type": "string", "nullable": True},
                "error_description": {"type": "string", "nullable": True},
            },
            "required": ["status", "code", "reason"],
        },
        description=description,
    )


def command_view_for(action: str) -> type[ChargePointCommandView]:
    """A view class for one action, documented with the action's OCPP schemas."""

    def post(self, request: Request, identity: str) -> Response:
        return ChargePointCommandView.post(self, request, identity)

    # A function of its own per action: the schema decorator annotates the
    # function it is given, so sharing the base class's would document every
    # action with the last one's schema.
    documented = extend_schema(
        operation_id=f"charge_point_command_{action}",
        summary=f"Send {action} to a charge point",
        description=(
            f"The body is the OCPP 1.6 {action}.req payload. 200 carries the "
            f"charger's {action}.conf; failures use the error shape with the "
            "command's outcome as `code`."
        ),
        tags=["commands"],
        parameters=[
            OpenApiParameter(
                "identity",
                str,
                OpenApiParameter.PATH,
                description="Charge point identity.",
            )
        ],
        request={"application/json": ocpp16_schema(action)},
        responses={
            200: OpenApiResponse(
                response=_answer_schema(action), description="The charger's answer."
            ),
            400: _failure_schema(
                "The payload does not fit the action's schema, or is not an object."
            ),
            404: _failure_schema("No such charge point."),
            409: _failure_schema("The charge point is not connected."),
            502: _failure_schema(
                "The charger answered with a CallError; `error_code` holds it."
            ),
            504: _failure_schema("The charger did not answer in time."),
        },
    )(post)
    return type(
        f"{action}CommandView",
        (ChargePointCommandView,),
        {"action": action, "post": documented},
    )
