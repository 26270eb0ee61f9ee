"""API personas: anonymous, read-only key, read-write key, staff session."""

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from api_access.models import ApiKey, ApiKeyScope


@pytest.fixture(autouse=True)
def _empty_cache():
    # Rate-limit counters and cached fleet insights must not leak between tests.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _api_limits(settings):
    # Limits are tested on purpose in test_rate_limits.py; elsewhere they are off.
    settings.API_RATE_PER_KEY = ""
    settings.API_RATE_PER_ADDRESS = ""
    settings.LOGIN_RATE_PER_ADDRESS = ""


@pytest.fixture
def read_only_key(db) -> tuple[ApiKey, str]:
    return ApiKey.objects.create_key(name="reporting", scope=ApiKeyScope.READ_ONLY)


@pytest.fixture
def read_write_key(db) -> tuple[ApiKey, str]:
    return ApiKey.objects.create_key(name="automation", scope=ApiKeyScope.READ_WRITE)


@pytest.fixture
def anonymous_api() -> APIClient:
    return APIClient()


@pytest.fixture
def read_only_api(read_only_key) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {read_only_key[1]}")
    return client


@pytest.fixture
def read_write_api(read_write_key) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {read_write_key[1]}")
    return client


@pytest.fixture
def staff_api(staff_user) -> APIClient:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(staff_user)
    client.get("/accounts/login/")  # sets the CSRF cookie a browser would have
    client.credentials(HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)
    return client
