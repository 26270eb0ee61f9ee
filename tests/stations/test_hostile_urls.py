"""A station URL holding a NUL (PostgreSQL cannot compare one) is a 404."""

import pytest

pytestmark = pytest.mark.django_db


def test_a_station_id_with_nul_is_not_found_not_a_server_error(
    staff_client, charge_point
):
    answer = staff_client.get("/stations/CP%00/")

    assert answer.status_code == 404
    assert staff_client.get(f"/stations/{charge_point.identity}/").status_code == 200
