"""What a caller may do: read with any key or staff session, write with a
read-write key or a staff session."""

from rest_framework import exceptions, permissions
from rest_framework.request import Request

from api_access.models import ApiKey


class ApiAccess(permissions.BasePermission):
    """Anonymous: 401. Logged in without staff flag: 403. Read-only key writing: 403."""

    message = "This API is for API keys and staff accounts."

    def has_permission(self, request: Request, view) -> bool:
        if isinstance(request.auth, ApiKey):
            if request.method in permissions.SAFE_METHODS:
                return True
            if request.auth.can_write:
                return True
            raise exceptions.PermissionDenied("This API key is read-only.")

        user = request.user
        if user is None or not user.is_authenticated:
            raise exceptions.NotAuthenticated(
                "Send an API key (Authorization: Api-Key <key>) or log in as staff."
            )
        if not user.is_staff:
            raise exceptions.PermissionDenied(
                "Only staff accounts can use the API from a browser session."
            )
        return True
