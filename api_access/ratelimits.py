"""Rate limits with django-ratelimit: per address on everything under /api/ and on
the login form, per key (or staff account) on every authenticated API call.

Counters live in the default cache: Redis in production, so that every worker
process counts against the same limit. In the embedded default (a local-memory
cache) each process counts on its own.
"""

import logging
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django_ratelimit import ALL
from django_ratelimit.core import get_usage
from rest_framework import throttling
from rest_framework.request import Request

from api_access.responses import error_response

logger = logging.getLogger(__name__)


def _client_ip(group: str, request: HttpRequest) -> str:
    return request.META.get(settings.RATELIMIT_IP_META_KEY, "") or "unknown"


def usage_by_address(request: HttpRequest, *, group: str, rate: str) -> dict | None:
    """Count one request of this address in ``group``; None when limits are off."""
    if not rate:
        return None
    return get_usage(
        request, group=group, key=_client_ip, rate=rate, method=ALL, increment=True
    )


def retry_after_s(usage: dict) -> int:
    return max(1, int(usage.get("time_left") or 1))


class ApiAddressLimitMiddleware:
    """Per-address limit for every request under /api/, before authentication, so
    that guessing keys and anonymous floods are limited too."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/"):
            usage = usage_by_address(
                request, group="api-address", rate=settings.API_RATE_PER_ADDRESS
            )
            if usage is not None and usage["should_limit"]:
                logger.info(
                    "API rate limit reached by an address",
                    extra={"limit": settings.API_RATE_PER_ADDRESS},
                )
                wait = retry_after_s(usage)
                response = error_response(
                    status=429,
                    code="throttled",
                    reason=f"Too many requests from this address; retry in {wait} s.",
                )
                response["Retry-After"] = str(wait)
                return response
        return self.get_response(request)


def login_rate_limited(view: Callable) -> Callable:
    """Limit POSTs to the login form per address; over the limit: 429, Retry-After."""

    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method == "POST":
            usage = usage_by_address(
                request, group="login", rate=settings.LOGIN_RATE_PER_ADDRESS
            )
            if usage is not None and usage["should_limit"]:
                wait = retry_after_s(usage)
                response = HttpResponse(
                    f"Too many login attempts from this address. "
                    f"Try again in {wait} seconds.",
                    status=429,
                    content_type="text/plain; charset=utf-8",
                )
                response["Retry-After"] = str(wait)
                return response
        return view(request, *args, **kwargs)

    return wrapped


class PerKeyRateThrottle(throttling.BaseThrottle):
    """Per API key (or per staff account on a browser session)."""

    def __init__(self) -> None:
        self.usage: dict | None = None

    def allow_request(self, request: Request, view) -> bool:
        rate = settings.API_RATE_PER_KEY
        if not rate:
            return True
        api_key = getattr(request.auth, "prefix", None)
        if api_key is not None:
            ident = f"key:{api_key}"
        elif request.user is not None and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            return True

        self.usage = get_usage(
            request._request,
            group="api-key",
            key=lambda group, req: ident,
            rate=rate,
            method=ALL,
            increment=True,
        )
        return not self.usage["should_limit"]

    def wait(self) -> float | None:
        return None if self.usage is None else float(retry_after_s(self.usage))
