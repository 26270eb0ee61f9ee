"""OpenAPI generation: every operation documents the error answers it can give,
all in the one error shape (api_access/errors.py)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse

from api_access.errors import ApiError

ERROR_DESCRIPTIONS = {
    "400": "Invalid input (body or query parameters); `fields` says which.",
    "401": "No API key or staff session, or an unknown, revoked or expired key. "
    "Carries `WWW-Authenticate: Api-Key`.",
    "403": "A read-only key tried to write, or the logged-in account is not staff.",
    "404": "No such object, page or cursor.",
    "415": "The body is not JSON.",
    "429": "Rate limit reached (per key or per address); retry after the number "
    "of seconds in the Retry-After header.",
}
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class ApiAutoSchema(AutoSchema):
    """AutoSchema that adds the common error answers to every operation."""

    def _get_response_bodies(self, direction="response") -> dict:
        responses = super()._get_response_bodies(direction)
        codes = ["400", "401", "403", "404", "429"]
        if self.method in WRITE_METHODS:
            codes.append("415")
        for code in codes:
            if code in responses:
                continue
            responses[code] = self._get_response_for_code(
                OpenApiResponse(
                    response=ApiError, description=ERROR_DESCRIPTIONS[code]
                ),
                code,
                direction=direction,
            )
        responses["429"]["headers"] = {
            "Retry-After": {
                "schema": {"type": "integer"},
                "description": "Seconds until the limit resets.",
            }
        }
        responses["401"]["headers"] = {
            "WWW-Authenticate": {
                "schema": {"type": "string"},
                "description": 'Api-Key realm="api"',
            }
        }
        return responses


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "api_access.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <prefix>.<secret>`: the key staff created in "
            "the admin (shown once).",
        }
