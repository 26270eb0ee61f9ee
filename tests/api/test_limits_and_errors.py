"""Rate limits (429 with Retry-After) and the one error shape."""

import pytest
from django.core.cache import cache

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_counters():
    cache.clear()
    yield
    cache.clear()


def test_a_key_over_its_limit_gets_429_with_retry_after(read_only_api, settings):
    settings.API_RATE_PER_KEY = "3/m"

    answers = [read_only_api.get("/api/sites/") for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    limited = answers[-1]
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert limited.json()["code"] == "throttled"
    assert limited.json()["status"] == 429


def test_the_key_limit_is_per_key(read_only_api, read_write_api, settings):
    settings.API_RATE_PER_KEY = "2/m"
    for _ in range(3):
        read_only_api.get("/api/sites/")

    assert read_only_api.get("/api/sites/").status_code == 429
    assert read_write_api.get("/api/sites/").status_code == 200


def test_an_address_over_its_limit_gets_429_even_without_a_key(anonymous_api, settings):
    settings.API_RATE_PER_ADDRESS = "5/m"

    codes = [anonymous_api.get("/api/sites/").status_code for _ in range(6)]
    limited = anonymous_api.get("/api/sites/", REMOTE_ADDR="127.0.0.1")
    other_address = anonymous_api.get("/api/sites/", REMOTE_ADDR="10.1.2.3")

    assert codes == [401] * 5 + [429]
    assert limited.status_code == 429
    assert int(limited["Retry-After"]) >= 1
    assert "address" in limited.json()["reason"]
    assert other_address.status_code == 401


def test_guessing_keys_is_limited_per_address(anonymous_api, settings):
    settings.API_RATE_PER_ADDRESS = "3/m"
    anonymous_api.credentials(HTTP_AUTHORIZATION="Api-Key aaaaaaaa.guess")

    codes = [anonymous_api.get("/api/sites/").status_code for _ in range(4)]

    assert codes == [401, 401, 401, 429]


def test_login_form_posts_are_limited_per_address(client, staff_user, settings):
    settings.LOGIN_RATE_PER_ADDRESS = "3/m"
    wrong = {"username": "staff", "password": "wrong"}

    codes = [client.post("/accounts/login/", wrong).status_code for _ in range(3)]
    blocked = client.post(
        "/accounts/login/", {"username": "staff", "password": "staff-pass-1"}
    )

    assert codes == [200, 200, 200]
    assert blocked.status_code == 429
    assert int(blocked["Retry-After"]) >= 1
    assert "_auth_user_id" not in client.session
    assert client.get("/accounts/login/").status_code == 200  # reading is not limited


def test_invalid_json_is_400_with_a_reason(read_write_api):
    response = read_write_api.post(
        "/api/fleets/", "{not json", content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert "JSON" in response.json()["reason"]


def test_a_missing_field_is_400_naming_the_field(read_write_api):
    response = read_write_api.post("/api/vehicles/", {}, format="json")

    body = response.json()
    assert response.status_code == 400
    assert body["code"] == "invalid"
    assert body["fields"]["name"] == ["This field is required."]
    assert body["reason"].startswith("Invalid input: name:")


def test_a_duplicate_token_is_400_whatever_the_case(read_write_api):
    first = read_write_api.post("/api/id-tokens/", {"value": "card-7"}, format="json")
    again = read_write_api.post("/api/id-tokens/", {"value": "CARD-7"}, format="json")

    assert first.status_code == 201
    assert again.status_code == 400
    assert "exists already" in again.json()["fields"]["value"][0]


def test_a_duplicate_fleet_name_is_400(read_write_api):
    read_write_api.post("/api/fleets/", {"name": "Vans"}, format="json")

    again = read_write_api.post("/api/fleets/", {"name": "Vans"}, format="json")

    assert again.status_code == 400
    assert "name" in again.json()["fields"]


def test_a_wrong_method_is_405_in_the_error_shape(read_write_api):
    response = read_write_api.delete("/api/sessions/")

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_fleet_and_vehicle_crud(read_write_api, site):
    fleet = read_write_api.post(
        "/api/fleets/", {"name": "Vans", "site": "campus"}, format="json"
    ).json()
    vehicle = read_write_api.post(
        "/api/vehicles/",
        {"name": "Van 1", "fleet": fleet["id"], "model": "e-Transit"},
        format="json",
    ).json()

    renamed = read_write_api.patch(
        f"/api/fleets/{fleet['id']}/", {"name": "Delivery vans"}, format="json"
    )
    listed = read_write_api.get("/api/fleets/").json()["results"]
    deleted = read_write_api.delete(f"/api/fleets/{fleet['id']}/")
    orphan = read_write_api.get(f"/api/vehicles/{vehicle['id']}/").json()

    assert renamed.json()["name"] == "Delivery vans"
    assert listed[0]["vehicle_count"] == 1
    assert listed[0]["site"] == "campus"
    assert deleted.status_code == 204
    assert orphan["fleet"] is None
    assert orphan["model"] == "e-Transit"


def test_api_500_has_the_error_shape(rf):
    from api_access.errors import server_error

    response = server_error(rf.get("/api/sessions/"))

    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert b'"code": "server_error"' in response.content


def test_docs_and_schema_are_served_without_a_cdn(anonymous_api):
    docs = anonymous_api.get("/api/docs/")
    schema = anonymous_api.get("/api/schema/")

    assert docs.status_code == 200
    page = docs.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page
    assert "cdn." not in page
    assert schema.status_code == 200


@pytest.mark.parametrize(
    "instant",
    [
        "2573-08-13T02:03:39+18:29",
        "0001-01-01T00:00:00+05:00",
        "9999-12-31T23:59:59-05:00",
    ],
)
@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("/api/sessions/", "started_before"),
        ("/api/status-events/", "until"),
        ("/api/forecasts/", "target_before"),
    ],
)
def test_odd_but_valid_iso_instants_never_reach_the_database_raw(
    read_only_api, url, name, instant
):
    response = read_only_api.get(url, {name: instant})

    # An offset PostgreSQL refuses is turned into UTC; an overflow is the caller's.
    assert response.status_code in (200, 400)
    if response.status_code == 400:
        assert response.json()["fields"][name] == ["The time is out of range."]
