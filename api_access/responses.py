"""The error body every API error shares (kept free of DRF imports, so that
middleware can use it)."""

from django.http import JsonResponse


def error_body(*, status: int, code: str, reason: str, fields=None) -> dict:
    body = {"status": status, "code": code, "reason": reason}
    if fields:
        body["fields"] = fields
    return body


def error_response(*, status: int, code: str, reason: str, fields=None) -> JsonResponse:
    return JsonResponse(
        error_body(status=status, code=code, reason=reason, fields=fields),
        status=status,
    )
