"""Filters and pagination on real ACN sessions (Caltech, 2019-12-30..2020-12-30,
imported once per module with the import command); list endpoints in a fixed
number of queries. Expected rows are read from the same file, independently."""

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from functools import cache

import pytest
from django.utils import timezone

from sessions.models import ChargingSession, Fleet, IdToken, MeterSample, Vehicle
from stations.models import ChargePoint, Site, StatusEvent
from tests.conftest import ACN_DIR
from tests.sessions.conftest import imported_for_module

pytestmark = pytest.mark.django_db
ACN_JSON = (
    ACN_DIR / "raw_api_json" / "acndata_sessions_caltech_2019-12-30_2020-12-30.json"
)


def acn_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    return datetime.strptime(value, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC)


@cache
def acn_items() -> tuple[dict, ...]:
    return tuple(json.loads(ACN_JSON.read_text())["_items"])


@pytest.fixture(scope="module")
def acn_imported(django_db_setup, django_db_blocker):
    with imported_for_module(django_db_blocker, ACN_JSON) as run:
        yield run


@pytest.fixture
def acn(acn_imported, db):
    assert "rejected 0" in acn_imported.stdout
    return Site.objects.get(code="caltech")


def all_pages(client, url, params=None):
    rows, response = [], client.get(url, {**(params or {}), "page_size": 200})
    while True:
        assert response.status_code == 200, response.content
        body = response.json()
        rows += body["results"]
        if not body["next"]:
            return rows, body
        response = client.get(body["next"])


def test_site_filter_returns_the_sites_sessions_only(read_only_api, acn):
    other = Site.objects.create(code="jpl", name="JPL")
    cp = ChargePoint.objects.create(identity="jpl-1", site=other)
    ChargingSession.objects.create(charge_point=cp, started_at=timezone.now())

    rows, body = all_pages(read_only_api, "/api/sessions/", {"site": "caltech"})

    assert body["count"] == len(acn_items()) == len(rows)
    assert {row["site"] for row in rows} == {"caltech"}
    assert len({row["id"] for row in rows}) == len(rows)


def test_charge_point_filter(read_only_api, acn):
    station, expected = Counter(i["spaceID"] for i in acn_items()).most_common(1)[0]

    rows, _ = all_pages(
        read_only_api, "/api/sessions/", {"charge_point": f"caltech-{station}"}
    )

    assert len(rows) == expected
    assert {row["charge_point"] for row in rows} == {f"caltech-{station}"}


def test_token_filter_ignores_case_like_ocpp(read_only_api, acn):
    user, expected = Counter(
        i["userID"] for i in acn_items() if i["userID"]
    ).most_common(1)[0]

    token = IdToken.objects.get(value=f"ACN-{user}")

    rows, _ = all_pages(read_only_api, "/api/sessions/", {"token": f"acn-{user}"})

    assert len(rows) == expected
    assert {row["id_token"] for row in rows} == {token.pk}


def test_vehicle_and_fleet_filters(read_only_api, acn):
    top = Counter(i["userID"] for i in acn_items() if i["userID"]).most_common(3)
    vehicles = [Vehicle.objects.get(external_id=f"acn:user:{u}") for u, _ in top]
    fleet = Fleet.objects.create(name="Commuters")
    Vehicle.objects.filter(pk__in=[v.pk for v in vehicles]).update(fleet=fleet)

    by_vehicle, _ = all_pages(
        read_only_api, "/api/sessions/", {"vehicle": vehicles[0].pk}
    )
    by_fleet, _ = all_pages(read_only_api, "/api/sessions/", {"fleet": fleet.pk})

    assert len(by_vehicle) == top[0][1]
    assert len(by_fleet) == sum(n for _, n in top)
    assert {row["fleet"] for row in by_fleet} == {fleet.pk}


def test_time_range_filter_selects_by_start(read_only_api, acn):
    after = datetime.fromisoformat("2020-01-13T00:00:00-08:00")
    before = datetime.fromisoformat("2020-01-18T00:00:00-08:00")
    expected = [
        i for i in acn_items() if after <= acn_time(i["connectionTime"]) < before
    ]

    rows, _ = all_pages(
        read_only_api,
        "/api/sessions/",
        {"started_after": after.isoformat(), "started_before": before.isoformat()},
    )

    assert 0 < len(rows) == len(expected)
    assert {r["external_id"] for r in rows} == {
        f"acn:{i['sessionID']}" for i in expected
    }


def test_active_filter(read_only_api, acn):
    still_plugged = list(ChargingSession.objects.order_by("id")[:3])
    ChargingSession.objects.filter(pk__in=[s.pk for s in still_plugged]).update(
        stopped_at=None
    )

    active, _ = all_pages(read_only_api, "/api/sessions/", {"active": "true"})
    stopped, body = all_pages(read_only_api, "/api/sessions/", {"active": "false"})

    assert sorted(r["id"] for r in active) == sorted(s.pk for s in still_plugged)
    assert all(r["is_active"] for r in active)
    assert body["count"] == len(acn_items()) - 3


def test_session_pages_are_newest_first_without_gaps(read_only_api, acn):
    first = read_only_api.get("/api/sessions/", {"page_size": 50}).json()
    second = read_only_api.get(first["next"]).json()

    starts = [r["started_at"] for r in first["results"] + second["results"]]
    assert len(starts) == 100
    assert starts == sorted(starts, reverse=True)
    assert first["count"] == len(acn_items())
    newest = max(acn_time(i["connectionTime"]) for i in acn_items())
    assert datetime.fromisoformat(starts[0]) == newest


def test_an_unknown_filter_value_is_400_with_the_field(read_only_api, acn):
    response = read_only_api.get("/api/sessions/", {"site": "atlantis"})

    assert response.status_code == 400
    assert "site" in response.json()["fields"]


def test_a_page_past_the_end_is_404_in_the_error_shape(read_only_api, acn):
    response = read_only_api.get("/api/sessions/", {"page": 999})

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_meter_samples_walk_in_time_order_with_a_cursor(read_only_api, acn):
    session = ChargingSession.objects.order_by("started_at").first()
    start = session.started_at
    MeterSample.objects.bulk_create(
        MeterSample(
            session=session,
            charge_point_id=session.charge_point_id,
            timestamp=start + timedelta(seconds=60 * (n // 3)),
            phase=["L1", "L2", "L3"][n % 3],  # three samples share each timestamp
            measurand="Current.Import",
            raw_value=str(n),
            value=n,
            unit="A",
            normalised_unit="A",
        )
        for n in range(1234)
    )
    url = f"/api/sessions/{session.pk}/meter-samples/"

    seen, response = [], read_only_api.get(url, {"page_size": 100})
    while True:
        body = response.json()
        assert "count" not in body
        seen += body["results"]
        if not body["next"]:
            break
        response = read_only_api.get(body["next"])

    assert len(seen) == 1234
    assert len({s["id"] for s in seen}) == 1234
    stamps = [s["timestamp"] for s in seen]
    assert stamps == sorted(stamps)


def test_meter_samples_of_a_missing_session_are_404(read_only_api, db):
    response = read_only_api.get("/api/sessions/999999/meter-samples/")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert response.json()["reason"]


def test_status_events_filter_by_charger_and_time(read_only_api, acn):
    cp = ChargePoint.objects.order_by("identity").first()
    other = ChargePoint.objects.order_by("identity").last()
    base = timezone.now() - timedelta(days=1)
    for n in range(30):
        StatusEvent.objects.create(
            charge_point=cp if n % 2 else other,
            connector_number=1,
            status="Charging" if n % 3 else "Available",
            timestamp=base + timedelta(minutes=n),
        )

    response = read_only_api.get(
        "/api/status-events/",
        {
            "charge_point": cp.identity,
            "since": (base + timedelta(minutes=10)).isoformat(),
        },
    )

    rows = response.json()["results"]
    assert len(rows) == 10  # odd minutes 11..29
    assert {r["charge_point"] for r in rows} == {cp.identity}
    assert [r["timestamp"] for r in rows] == sorted(
        (r["timestamp"] for r in rows), reverse=True
    )


@pytest.mark.parametrize(
    "url",
    [
        "/api/sites/",
        "/api/charge-points/",
        "/api/connectors/",
        "/api/id-tokens/",
        "/api/fleets/",
        "/api/vehicles/",
        "/api/sessions/?page_size=500",
        "/api/status-events/",
    ],
)
def test_lists_take_a_fixed_number_of_queries(
    read_only_api, acn, url, django_assert_max_num_queries
):
    Site.objects.create(code="jpl", name="JPL")
    fleet = Fleet.objects.create(name="Commuters")
    Fleet.objects.create(name="Visitors")
    Vehicle.objects.update(fleet=fleet)
    for cp in ChargePoint.objects.all()[:20]:
        StatusEvent.objects.create(
            charge_point=cp, status="Available", timestamp=timezone.now()
        )
    read_only_api.get(url)  # the key's last-used time is written on first use

    # Key lookup + COUNT + page (+ one prefetch for connectors).
    with django_assert_max_num_queries(4):
        response = read_only_api.get(url)

    assert response.status_code == 200
    assert len(response.json()["results"]) > 1


def test_fleet_insights_take_a_fixed_number_of_queries(
    read_only_api, acn, django_assert_max_num_queries
):
    site_tz = acn.tz
    users = sorted({i["userID"] for i in acn_items() if i["userID"]})
    fleets = [Fleet.objects.create(name=f"Fleet {n}") for n in range(4)]
    for n, user in enumerate(users):
        Vehicle.objects.filter(external_id=f"acn:user:{user}").update(
            fleet=fleets[n % 4]
        )
    read_only_api.get("/api/sites/")

    # Independent of the number of vehicles and sessions: about ten for the
    # sessions, fleets and baselines, and a handful per site for its forecast.
    with django_assert_max_num_queries(20):
        response = read_only_api.get(
            "/api/ml/fleet-insights/",
            {"date_from": "2020-01-01", "date_to": "2020-01-31"},
        )

    body = response.json()
    assert response.status_code == 200
    assert [f["name"] for f in body["fleets"]] == [
        "Fleet 0",
        "Fleet 1",
        "Fleet 2",
        "Fleet 3",
    ]
    sessions = sum(f["figures"]["sessions"] for f in body["fleets"])
    claimed = [i for i in acn_items() if i["userID"]]
    # Claimed sessions that started in January, Pacific time, and had stopped.
    january = [
        i
        for i in claimed
        if acn_time(i["connectionTime"]).astimezone(site_tz).strftime("%Y-%m")
        == "2020-01"
    ]
    assert sessions == len(january)


def test_local_day_filters_shared_with_the_session_page(read_only_api, acn):
    day = "2020-01-15"
    expected = [
        i
        for i in acn_items()
        if acn_time(i["connectionTime"]).astimezone(acn.tz).date().isoformat() == day
    ]

    rows, _ = all_pages(
        read_only_api, "/api/sessions/", {"date_from": day, "date_to": day}
    )

    assert 0 < len(rows) == len(expected)


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01"])
def test_local_days_at_the_ends_of_the_calendar_are_no_500(read_only_api, acn, day):
    response = read_only_api.get("/api/sessions/", {"date_from": day, "date_to": day})

    assert response.status_code == 400
    assert response.json()["fields"]["date_to"] == ["The day is out of range."]
