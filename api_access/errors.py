"""One JSON error shape for the whole API.

Every error answer under /api/ looks like::

    {"status": 403, "code": "permission_denied", "reason": "This API key is read-only."}

with ``fields`` added for invalid input (field name -> list of messages).
"""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.views import defaults
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler

from api_access.responses import error_body, error_response

logger = logging.getLogger(__name__)


class ApiError(serializers.Serializer):
    """The error answer of every endpoint (documented in the schema)."""

    status = serializers.IntegerField(help_text="The HTTP status code, repeated.")
    code = serializers.CharField(
        help_text="Stable machine-readable code, e.g. not_found, invalid, throttled."
    )
    reason = serializers.CharField(help_text="What went wrong, for a person.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Invalid input only: messages per field.",
    )


def _flatten(detail, prefix: str = "") -> dict[str, list[str]]:
    """Validation details (nested dicts and lists) as ``{"a.b": [messages]}``."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            out.update(_flatten(value, name))
    elif isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            out.setdefault(prefix or "non_field_errors", []).extend(
                str(item) for item in detail
            )
        else:
            for index, item in enumerate(detail):
                name = f"{prefix}.{index}" if prefix else str(index)
                out.update(_flatten(item, name))
    else:
        out.setdefault(prefix or "non_field_errors", []).append(str(detail))
    return out


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's handler (status, auth headers, Retry-After), then our body shape.

    A Django ValidationError raised by a service is the caller's bad input: 400.
    """
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or None)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        exc = exceptions.ValidationError(detail=detail)
    response = exception_handler(exc, context)
    if response is None:
        # Not an API exception: Django answers 500, through server_error below.
        return None

    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        first = next(iter(fields.items()))
        reason = f"Invalid input: {first[0]}: {first[1][0]}"
        if len(fields) > 1:
            reason += f" (and {len(fields) - 1} more)"
        response.data = error_body(
            status=response.status_code, code="invalid", reason=reason, fields=fields
        )
        return response

    detail = getattr(exc, "detail", None)
    code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
    if not isinstance(code, str):
        code = "error"
    reason = str(detail) if detail is not None else str(exc)
    response.data = error_body(status=response.status_code, code=code, reason=reason)
    return response


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return error_response(
            status=404,
            code="not_found",
            reason=f"No API endpoint at {request.path}. See /api/docs/.",
        )
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return error_response(
            status=500,
            code="server_error",
            reason="The server failed to answer; the error has been logged.",
        )
    return defaults.server_error(request)
