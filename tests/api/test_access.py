"""Who may read and write: anonymous, read-only key, read-write key, staff."""

from datetime import timedelta

import pytest
from django.utils import timezone

from api_access.models import ApiKey
from sessions.models import Fleet, IdToken, IdTokenStatus

pytestmark = pytest.mark.django_db


READ_URLS = [
    "/api/sites/",
    "/api/charge-points/",
    "/api/connectors/",
    "/api/id-tokens/",
    "/api/fleets/",
    "/api/vehicles/",
    "/api/sessions/",
    "/api/status-events/",
    "/api/forecasts/",
    "/api/model-versions/",
]


@pytest.mark.parametrize("url", READ_URLS)
def test_anonymous_gets_401_with_www_authenticate_and_a_reason(anonymous_api, url):
    response = anonymous_api.get(url)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Api-Key realm="api"'
    body = response.json()
    assert body["status"] == 401
    assert body["code"] == "not_authenticated"
    assert "API key" in body["reason"]


@pytest.mark.parametrize("url", READ_URLS)
@pytest.mark.parametrize("persona", ["read_only_api", "read_write_api", "staff_api"])
def test_every_persona_with_access_can_read(request, persona, url, charge_point):
    client = request.getfixturevalue(persona)

    response = client.get(url)

    assert response.status_code == 200, response.content
    assert "results" in response.json()


def test_anonymous_cannot_write(anonymous_api):
    response = anonymous_api.post("/api/fleets/", {"name": "Vans"}, format="json")

    assert response.status_code == 401
    assert not Fleet.objects.exists()


def test_read_only_key_writing_gets_403_and_changes_nothing(read_only_api):
    token = IdToken.objects.create(value="CARD-1")

    create = read_only_api.post("/api/fleets/", {"name": "Vans"}, format="json")
    block = read_only_api.post(f"/api/id-tokens/{token.pk}/block/")

    assert create.status_code == 403
    assert create.json()["reason"] == "This API key is read-only."
    assert block.status_code == 403
    assert not Fleet.objects.exists()
    token.refresh_from_db()
    assert token.status == IdTokenStatus.ACCEPTED


@pytest.mark.parametrize("persona", ["read_write_api", "staff_api"])
def test_read_write_key_and_staff_can_create_fleets_and_block_tokens(request, persona):
    client = request.getfixturevalue(persona)
    token = IdToken.objects.create(value="CARD-1")

    create = client.post("/api/fleets/", {"name": "Vans"}, format="json")
    block = client.post(f"/api/id-tokens/{token.pk}/block/")

    assert create.status_code == 201, create.content
    assert create.json()["name"] == "Vans"
    assert block.status_code == 200
    assert block.json()["status"] == "Blocked"
    token.refresh_from_db()
    assert token.status == IdTokenStatus.BLOCKED


def test_staff_session_without_csrf_token_cannot_write(staff_user):
    from rest_framework.test import APIClient

    client = APIClient(enforce_csrf_checks=True)
    client.force_login(staff_user)

    response = client.post("/api/fleets/", {"name": "Vans"}, format="json")

    assert response.status_code == 403
    assert "CSRF" in response.json()["reason"]


def test_logged_in_non_staff_account_gets_403(operator_user):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_login(operator_user)

    response = client.get("/api/sites/")

    assert response.status_code == 403
    assert "staff" in response.json()["reason"]


def test_a_revoked_key_gets_401(read_only_api, read_only_key):
    api_key, _ = read_only_key
    api_key.revoked = True
    api_key.save()

    response = read_only_api.get("/api/sites/")

    assert response.status_code == 401
    assert "revoked" in response.json()["reason"]


def test_an_expired_key_gets_401(read_only_api, read_only_key):
    api_key, _ = read_only_key
    api_key.expiry_date = timezone.now() - timedelta(minutes=1)
    api_key.save()

    response = read_only_api.get("/api/sites/")

    assert response.status_code == 401
    assert response.json()["reason"] == "The API key has expired."


def test_a_made_up_key_gets_401(anonymous_api):
    anonymous_api.credentials(HTTP_AUTHORIZATION="Api-Key abcdefgh.not-a-real-secret")

    response = anonymous_api.get("/api/sites/")

    assert response.status_code == 401


def test_using_a_key_records_when_it_was_last_used(read_only_api, read_only_key):
    api_key, _ = read_only_key
    assert api_key.last_used_at is None

    read_only_api.get("/api/sites/")

    api_key.refresh_from_db()
    assert api_key.last_used_at is not None
    assert timezone.now() - api_key.last_used_at < timedelta(seconds=10)


def test_keys_are_stored_hashed_and_the_secret_is_nowhere_in_the_row(read_only_key):
    api_key, secret = read_only_key
    row = ApiKey.objects.filter(pk=api_key.pk).values().get()

    assert all(secret not in str(value) for value in row.values())
    assert secret.split(".", 1)[1] not in row["hashed_key"]


def test_staff_create_a_key_in_the_admin_and_see_it_once(staff_client):
    response = staff_client.post(
        "/admin/api_access/apikey/add/",
        {"name": "nightly export", "scope": "read_only"},
        follow=True,
    )

    api_key = ApiKey.objects.get(name="nightly export")
    shown = [str(m) for m in response.context["messages"]]
    assert len(shown) >= 1
    secret = next(
        word.rstrip(".") for m in shown for word in m.split() if "." in word[8:]
    )
    assert secret.startswith(api_key.prefix + ".")
    assert ApiKey.objects.is_valid(secret)
    assert api_key.created_by.username == "staff"
    page = staff_client.get(f"/admin/api_access/apikey/{api_key.pk}/change/")
    assert secret not in page.content.decode()


def test_staff_revoke_keys_in_the_admin(staff_client, read_only_key):
    api_key, secret = read_only_key

    staff_client.post(
        "/admin/api_access/apikey/",
        {"action": "revoke_keys", "_selected_action": [api_key.pk]},
    )

    api_key.refresh_from_db()
    assert api_key.revoked
    assert not ApiKey.objects.is_valid(secret)


def test_unknown_api_path_answers_404_in_the_error_shape(read_only_api):
    response = read_only_api.get("/api/no-such-thing/")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert response.json()["reason"]
