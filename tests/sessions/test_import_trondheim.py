"""The Trondheim residential charging reports (one site per garage, Norwegian time)."""

import csv
import re
from collections import defaultdict
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.db.models import Sum

from sessions.models import ChargingSession, Fleet, IdToken, Vehicle
from stations.models import ChargePoint, Site
from tests.sessions.conftest import (
    TRONDHEIM_FILE,
    import_run,
    imported_for_module,
    number,
    readme,
    wh,
)

OSLO = ZoneInfo("Europe/Oslo")


@pytest.fixture(scope="module", autouse=True)
def trondheim_import(django_db_setup, django_db_blocker):
    with imported_for_module(django_db_blocker, TRONDHEIM_FILE) as run:
        yield run


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    with TRONDHEIM_FILE.open(newline="") as fh:
        return list(csv.DictReader(fh, delimiter=";"))


@pytest.fixture(scope="module")
def documented() -> dict[str, int]:
    text = readme(TRONDHEIM_FILE.parent)
    found = {
        "sessions": r"\*\*([\d,]+) sessions\*\*",
        "users": r"([\d,]+) user IDs",
        "garages": r"([\d,]+) garages",
        "private": r"Private charge points: ([\d,]+) sessions",
        "shared": r"shared: ([\d,]+)\.",
    }
    return {name: number(re.search(p, text).group(1)) for name, p in found.items()}


@pytest.mark.django_db
def test_counts_of_sessions_garages_and_users_match_the_readme(documented):
    sessions = ChargingSession.objects.filter(external_id__startswith="trondheim:")
    on_shared = sessions.filter(charge_point__identity__contains="-Shared-")

    assert sessions.count() == documented["sessions"] == 6_878
    assert Site.objects.filter(code__startswith="trondheim-").count() == 24
    assert documented["garages"] == 24
    assert on_shared.count() == documented["shared"]
    assert sessions.count() - on_shared.count() == documented["private"]
    assert (
        IdToken.objects.filter(value__startswith="TRD-").count() == documented["users"]
    )
    assert (
        Vehicle.objects.filter(external_id__startswith="trondheim:user:").count()
        == documented["users"]
    )


@pytest.mark.django_db
def test_private_users_have_their_own_charge_point_and_shared_ones_go_by_shared_id(
    rows,
):
    expected = {
        f"trondheim-{r['Garage_ID'].lower()}-"
        + (r["User_ID"] if r["User_type"] == "Private" else r["Shared_ID"])
        for r in rows
    }

    identities = ChargePoint.objects.filter(site__code__startswith="trondheim-")
    assert set(identities.values_list("identity", flat=True)) == expected


@pytest.mark.django_db
def test_the_energy_of_the_file_is_stored_to_the_wh(rows):
    expected_wh = sum(wh(r["El_kWh"].replace(",", ".")) for r in rows)

    stored = ChargingSession.objects.filter(external_id__startswith="trondheim:")
    assert stored.aggregate(e=Sum("energy_wh"))["e"] == expected_wh


@pytest.mark.django_db
def test_times_are_read_as_oslo_time_and_stored_in_utc(rows):
    winter = next(r for r in rows if r["Start_plugin"].split(".")[1] == "01")
    summer = next(r for r in rows if r["Start_plugin"].split(".")[1] == "07")

    for row, offset_h in ((winter, 1), (summer, 2)):
        session = ChargingSession.objects.select_related("charge_point__site").get(
            external_id=f"trondheim:{row['session_ID']}"
        )
        local = datetime.strptime(row["Start_plugin"], "%d.%m.%Y %H:%M").replace(
            tzinfo=OSLO
        )

        assert session.charge_point.site.time_zone == "Europe/Oslo"
        assert session.timestamp_zone_assumed
        assert session.started_at == local
        assert (
            session.started_at.astimezone(OSLO).strftime("%d.%m.%Y %H:%M")
            == row["Start_plugin"]
        )
        assert (
            session.started_at.astimezone(OSLO).utcoffset().seconds == offset_h * 3600
        )


@pytest.mark.django_db
def test_sessions_without_plug_out_time_are_kept_and_flagged(rows):
    missing = {f"trondheim:{r['session_ID']}" for r in rows if r["End_plugout"] == "NA"}
    assert missing

    flagged = ChargingSession.objects.filter(flags__contains=["stop_time_missing"])
    assert set(flagged.values_list("external_id", flat=True)) == missing
    assert not flagged.filter(stopped_at__isnull=False).exists()


@pytest.mark.django_db
def test_shared_cars_form_one_fleet_per_garage(rows):
    private_users = {r["User_ID"] for r in rows if r["User_type"] == "Private"}
    shared_garages = defaultdict(list)
    for r in rows:
        if r["User_type"] == "Shared" and r["User_ID"] not in private_users:
            shared_garages[r["User_ID"]].append(r["Garage_ID"])
    expected = defaultdict(set)
    for user, garages in shared_garages.items():
        home = min(set(garages), key=lambda g: (-garages.count(g), g))
        expected[f"Trondheim {home} shared cars"].add(f"trondheim:user:{user}")

    fleets = {
        fleet.name: set(fleet.vehicles.values_list("external_id", flat=True))
        for fleet in Fleet.objects.filter(name__startswith="Trondheim ")
    }
    assert fleets == expected
    assert not Vehicle.objects.filter(
        external_id__in=[f"trondheim:user:{u}" for u in private_users],
        fleet__isnull=False,
    ).exists()


@pytest.mark.django_db
def test_importing_the_file_again_creates_nothing(rows):
    before = ChargingSession.objects.count(), ChargePoint.objects.count()

    run = import_run(TRONDHEIM_FILE)

    assert (ChargingSession.objects.count(), ChargePoint.objects.count()) == before
    n = len(rows)
    assert f"read {n}, created 0, updated 0, unchanged {n}, rejected 0" in run.stdout
