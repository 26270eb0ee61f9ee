"""The workplace charging set (Asensio et al.): 25 locations of one US firm."""

import csv
import re
from datetime import UTC, datetime

import pytest
from django.db.models import Sum

from sessions.models import ChargingSession, Fleet, IdToken
from stations.models import ChargePoint, Site
from tests.sessions.conftest import (
    WORKPLACE_FILE,
    import_run,
    imported_for_module,
    number,
    readme,
    wh,
)


@pytest.fixture(scope="module", autouse=True)
def workplace_import(django_db_setup, django_db_blocker):
    with imported_for_module(django_db_blocker, WORKPLACE_FILE) as run:
        yield run


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    with WORKPLACE_FILE.open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def documented() -> dict[str, int]:
    text = readme(WORKPLACE_FILE.parent)
    found = {
        "sessions": r"\*\*([\d,]+) sessions\*\*",
        "users": r"([\d,]+) users",
        "stations": r"\*\*([\d,]+) stations\*\*",
        "locations": r"\*\*([\d,]+) locations\*\*",
    }
    return {name: number(re.search(p, text).group(1)) for name, p in found.items()}


@pytest.mark.django_db
def test_counts_of_sessions_stations_locations_and_users_match_the_readme(documented):
    assert documented == {
        "sessions": 3_395,
        "users": 85,
        "stations": 105,
        "locations": 25,
    }

    sessions = ChargingSession.objects.filter(external_id__startswith="workplace:")
    assert sessions.count() == documented["sessions"]
    assert Site.objects.filter(code__startswith="workplace-").count() == 25
    assert (
        ChargePoint.objects.filter(site__code__startswith="workplace-").count()
        == documented["stations"]
    )
    assert (
        IdToken.objects.filter(value__startswith="WP-").count() == documented["users"]
    )


@pytest.mark.django_db
def test_the_energy_of_the_file_is_stored_to_the_wh(rows):
    expected_wh = sum(wh(r["kwhTotal"]) for r in rows)

    stored = ChargingSession.objects.filter(external_id__startswith="workplace:")
    assert stored.aggregate(e=Sum("energy_wh"))["e"] == expected_wh


@pytest.mark.django_db
def test_years_written_0014_and_0015_are_read_as_2014_and_2015(rows):
    row = next(r for r in rows if r["created"].startswith("0014-"))

    session = ChargingSession.objects.get(external_id=f"workplace:{row['sessionId']}")
    stored = ChargingSession.objects.filter(external_id__startswith="workplace:")
    years = {d.year for d in stored.dates("started_at", "year")}

    assert session.started_at == datetime.fromisoformat(
        "2" + row["created"][1:]
    ).replace(tzinfo=UTC)
    assert session.raw_start_timestamp == row["created"]
    assert years == {2014, 2015}


@pytest.mark.django_db
def test_without_a_timezone_times_are_kept_as_written_in_utc_and_flagged():
    sites = Site.objects.filter(code__startswith="workplace-")

    assert set(sites.values_list("time_zone", flat=True)) == {"UTC"}
    assert not ChargingSession.objects.filter(
        external_id__startswith="workplace:", timestamp_zone_assumed=False
    ).exists()


@pytest.mark.django_db
def test_manager_vehicles_form_one_fleet(rows):
    managers = {r["userId"] for r in rows if r["managerVehicle"] == "1"}

    fleet = Fleet.objects.get(name="Workplace manager vehicles")
    assert set(fleet.vehicles.values_list("external_id", flat=True)) == {
        f"workplace:user:{u}" for u in managers
    }


@pytest.mark.django_db
def test_importing_the_file_again_creates_nothing(rows):
    before = ChargingSession.objects.count(), ChargePoint.objects.count()

    run = import_run(WORKPLACE_FILE)

    assert (ChargingSession.objects.count(), ChargePoint.objects.count()) == before
    n = len(rows)
    assert f"read {n}, created 0, updated 0, unchanged {n}, rejected 0" in run.stdout
