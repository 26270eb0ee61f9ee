"""Keys made on the command line work like keys made in the admin."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from api_access.models import ApiKey

pytestmark = pytest.mark.django_db


def create_key(*args: str) -> str:
    out = StringIO()
    call_command("create_api_key", *args, stdout=out, stderr=StringIO())
    return out.getvalue().strip()


def test_the_printed_key_reads_but_cannot_write_by_default():
    key = create_key("nightly export")
    client = APIClient(HTTP_AUTHORIZATION=f"Api-Key {key}")

    assert client.get("/api/sessions/").status_code == 200
    assert (
        client.post("/api/fleets/", {"name": "Vans"}, format="json").status_code == 403
    )
    stored = ApiKey.objects.get(name="nightly export")
    assert key.startswith(stored.prefix + ".")
    assert key not in stored.hashed_key


def test_a_read_write_key_can_write():
    key = create_key("fleet sync", "--scope", "read_write")
    client = APIClient(HTTP_AUTHORIZATION=f"Api-Key {key}")

    response = client.post("/api/fleets/", {"name": "Vans"}, format="json")

    assert response.status_code == 201


def test_an_unknown_scope_is_refused():
    with pytest.raises(CommandError, match="scope"):
        create_key("x", "--scope", "admin")
