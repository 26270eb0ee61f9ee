"""Who is calling: an API key (scripts) or a logged-in staff session (browsers)."""

import logging
from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request
from rest_framework_api_key.permissions import KeyParser

from api_access.models import ApiKey

logger = logging.getLogger(__name__)

# last_used_at is written at most once a minute per key: a script polling every
# second should not turn each read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)

KEYWORD = "Api-Key"


class ApiKeyUser:
    """The principal behind an API key: authenticated, never staff, no Django user."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_superuser = False
    is_active = True
    pk = None
    id = None

    def __init__(self, api_key: ApiKey) -> None:
        self.api_key = api_key
        self.username = f"api-key:{api_key.prefix}"

    def __str__(self) -> str:
        return self.username

    def get_username(self) -> str:
        return self.username


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """``Authorization: Api-Key <prefix>.<secret>``.

    No header: not this scheme (the next one, the session, may apply). A header
    with a key that is unknown, revoked or expired: 401.
    """

    key_parser = KeyParser()

    def authenticate(self, request: Request) -> tuple[ApiKeyUser, ApiKey] | None:
        key = self.key_parser.get(request)
        if key is None:
            return None

        try:
            api_key = ApiKey.objects.get_from_key(key)
        except ApiKey.DoesNotExist:
            raise exceptions.AuthenticationFailed(
                "The API key is unknown or has been revoked."
            ) from None
        if api_key.has_expired:
            raise exceptions.AuthenticationFailed("The API key has expired.")

        now = timezone.now()
        if api_key.last_used_at is None or (
            now - api_key.last_used_at >= LAST_USED_RESOLUTION
        ):
            ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
            api_key.last_used_at = now
        return ApiKeyUser(api_key), api_key

    def authenticate_header(self, request: Request) -> str:
        return f'{KEYWORD} realm="api"'
