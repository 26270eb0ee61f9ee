"""Bodies and URLs PostgreSQL cannot take (NUL characters, numbers past float
range such as 1e309) get a 400/404 with a reason, never a 500."""

import pytest

from sessions.models import Fleet
from stations.models import ChargePoint, Site

pytestmark = pytest.mark.django_db


@pytest.fixture
def charger(db):
    site = Site.objects.create(code="depot", name="Depot", time_zone="UTC")
    return ChargePoint.objects.create(identity="CP-1", site=site)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/vehicles/", '{"fleet": 1e309, "name": "van"}'),
        ("/api/fleets/", '{"name": "x", "extra": -1e400}'),
        (
            "/api/charge-points/CP-1/commands/ChangeConfiguration/",
            '{"key": "A\\u0000", "value": "1"}',
        ),
        (
            "/api/charge-points/CP-1/commands/SetChargingProfile/",
            '{"connectorId": 1, "csChargingProfiles": {"chargingProfileId": 1e309}}',
        ),
    ],
)
def test_unstorable_json_bodies_get_400_with_a_reason(
    read_write_api, charger, path, body
):
    answer = read_write_api.post(path, data=body, content_type="application/json")

    assert answer.status_code == 400, answer.content
    assert answer.json()["code"] == "parse_error"
    assert answer.json()["reason"]
    assert not Fleet.objects.exists()


def test_a_charge_point_id_with_nul_in_the_url_is_not_found(read_write_api, charger):
    answer = read_write_api.post(
        "/api/charge-points/CP%00-1/commands/Reset/",
        data='{"type": "Hard"}',
        content_type="application/json",
    )

    assert answer.status_code == 404
    assert answer.json()["code"] == "not_found"


@pytest.mark.parametrize("path", ["/api/charge-points/CP%00/", "/api/sites/de%00pot/"])
def test_a_detail_url_with_nul_is_not_found(read_only_api, charger, path):
    answer = read_only_api.get(path)

    assert answer.status_code == 404
    assert answer.json()["code"] == "not_found"
