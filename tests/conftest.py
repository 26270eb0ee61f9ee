"""Personas and shared fixtures.

Tests run on the database named by DATABASE_URL (PostgreSQL in `make test` and
CI). Unless a test asks for Redis, the channel layer is in memory and Celery
tasks run eagerly, as in the embedded default.
"""

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

REPO_DIR = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_DIR.parent / "shared" / "data"
ACN_DIR = SHARED_DATA / "acn-data-caltech-jpl"


@pytest.fixture(autouse=True)
def _embedded_runtime(settings):
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}
    }
    settings.CELERY_TASK_ALWAYS_EAGER = True
    # Persona passwords need no strength here; PBKDF2 cost seconds per test.
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        *settings.PASSWORD_HASHERS,
    ]
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    }
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {
            "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        },
    }


@pytest.fixture
def staff_user(db):
    return get_user_model().objects.create_superuser(
        username="staff", password="staff-pass-1"
    )


@pytest.fixture
def operator_user(db):
    return get_user_model().objects.create_user(
        username="operator", password="op-pass-1"
    )


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def operator_client(client, operator_user):
    client.force_login(operator_user)
    return client


@pytest.fixture
def site(db):
    from stations.models import Site

    return Site.objects.create(
        code="campus", name="Campus", time_zone="America/Los_Angeles"
    )


@pytest.fixture
def charge_point(site):
    from stations.models import ChargePoint

    return ChargePoint.objects.create(identity="CP-1", site=site)
