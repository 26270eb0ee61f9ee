"""How list pages are built: rows straight from the database that match the
documented serializers, exact next links while the total is counted from the
cache, and clear answers to bad page parameters."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.renderers import JSONRenderer

from sessions.api.serializers import ChargingSessionSerializer, MeterSampleSerializer
from sessions.models import ChargingSession, Fleet, IdToken, MeterSample, Vehicle
from stations.models import ChargePoint, Site

pytestmark = pytest.mark.django_db
T0 = datetime(2024, 3, 9, 18, 30, 15, 250000, tzinfo=UTC)


def as_json(data):
    return json.loads(JSONRenderer().render(data))


@pytest.fixture
def varied_sessions():
    site = Site.objects.create(code="depot", name="Depot", time_zone="Europe/Oslo")
    charge_point = ChargePoint.objects.create(identity="depot-1", site=site)
    fleet = Fleet.objects.create(name="Vans", site=site)
    van = Vehicle.objects.create(name="Van 7", fleet=fleet)
    loner = Vehicle.objects.create(name="Private car")
    token = IdToken.objects.create(value="04A2B3C4", vehicle=van)
    return [
        # Still charging: no stop, no energy yet.
        ChargingSession.objects.create(
            charge_point=charge_point, connector_number=2, started_at=T0
        ),
        # Finished, with everything a data set or charger can give.
        ChargingSession.objects.create(
            charge_point=charge_point,
            id_token=token,
            id_tag="04A2B3C4",
            vehicle=van,
            started_at=T0 - timedelta(days=1),
            stopped_at=T0 - timedelta(hours=15, microseconds=1),
            done_charging_at=T0 - timedelta(hours=18),
            meter_start_wh=1000,
            meter_stop_wh=23500,
            energy_wh=22500,
            stop_reason="EVDisconnected",
            source="import",
            external_id="acn:5e23b149f9af8b5fe4b973cf",
            requested_energy_wh=25000,
            requested_departure_at=T0 - timedelta(hours=14),
            timestamp_zone_assumed=True,
            flags=["stop_time_missing", {"raw": "odd"}],
        ),
        # A vehicle without a fleet, an unmatched transaction.
        ChargingSession.objects.create(
            charge_point=charge_point,
            vehicle=loner,
            started_at=T0 - timedelta(days=2),
            stopped_at=T0 - timedelta(days=2) + timedelta(minutes=5),
            energy_wh=0,
            is_unmatched=True,
        ),
    ]


@pytest.mark.parametrize("zone", ["UTC", "America/Los_Angeles"])
def test_session_list_rows_are_what_the_documented_serializer_gives(
    read_only_api, varied_sessions, settings, zone
):
    settings.TIME_ZONE = zone

    response = read_only_api.get("/api/sessions/")

    assert response.status_code == 200
    expected = [
        ChargingSessionSerializer(ChargingSession.objects.get(pk=s.pk)).data
        for s in varied_sessions
    ]
    assert response.json()["results"] == as_json(expected)


def test_a_listed_session_reads_the_same_as_its_own_page(
    read_only_api, varied_sessions
):
    rows = read_only_api.get("/api/sessions/").json()["results"]

    for row in rows:
        assert read_only_api.get(f"/api/sessions/{row['id']}/").json() == row


def test_meter_sample_rows_are_what_the_documented_serializer_gives(
    read_only_api, varied_sessions
):
    session = varied_sessions[1]
    for minute, (measurand, raw, unit, value) in enumerate(
        [
            ("Energy.Active.Import.Register", "1.5", "kWh", 1500.0),
            ("Power.Active.Import", "7200", "W", 7200.0),
            ("SoC", "abc", "Percent", None),
        ]
    ):
        MeterSample.objects.create(
            session=session,
            charge_point=session.charge_point,
            connector_number=1,
            timestamp=T0 + timedelta(minutes=minute, microseconds=minute),
            measurand=measurand,
            phase="L1" if minute == 1 else "",
            context="Sample.Periodic",
            unit=unit,
            raw_value=raw,
            value=value,
            normalised_unit="Wh" if unit == "kWh" else unit,
            flags=[] if value is not None else ["value_not_a_number"],
        )

    response = read_only_api.get(f"/api/sessions/{session.pk}/meter-samples/")

    assert response.status_code == 200
    expected = MeterSampleSerializer(
        MeterSample.objects.filter(session=session).order_by("timestamp", "id"),
        many=True,
    ).data
    assert response.json()["results"] == as_json(expected)


def make_sessions(charge_point, count, start):
    ChargingSession.objects.bulk_create(
        ChargingSession(
            charge_point=charge_point, started_at=start - timedelta(hours=n)
        )
        for n in range(count)
    )


def walk(client, url):
    ids, body = [], client.get(url).json()
    while True:
        ids += [row["id"] for row in body["results"]]
        if not body["next"]:
            return ids
        body = client.get(body["next"]).json()


def test_next_links_reach_every_row_while_the_count_is_cached(read_only_api, settings):
    settings.API_COUNT_CACHE_S = 600
    site = Site.objects.create(code="depot", name="Depot")
    charge_point = ChargePoint.objects.create(identity="depot-1", site=site)
    make_sessions(charge_point, 5, T0)
    first = read_only_api.get("/api/sessions/?page_size=2").json()
    assert first["count"] == 5

    # Four more arrive; the cached total is now too low.
    make_sessions(charge_point, 4, T0 - timedelta(days=1))

    ids = walk(read_only_api, "/api/sessions/?page_size=2")
    assert sorted(ids) == sorted(ChargingSession.objects.values_list("id", flat=True))
    assert len(ids) == 9
    # A page that shows rows past the cached total corrects it.
    last = read_only_api.get("/api/sessions/?page_size=2&page=5").json()
    assert last["count"] == 9
    assert last["next"] is None


def test_the_count_is_exact_when_counting_is_not_cached(read_only_api, settings):
    settings.API_COUNT_CACHE_S = 0
    site = Site.objects.create(code="depot", name="Depot")
    charge_point = ChargePoint.objects.create(identity="depot-1", site=site)
    make_sessions(charge_point, 5, T0)
    assert read_only_api.get("/api/sessions/?page_size=2").json()["count"] == 5

    make_sessions(charge_point, 4, T0 - timedelta(days=1))

    assert read_only_api.get("/api/sessions/?page_size=2").json()["count"] == 9


def test_each_filter_combination_has_its_own_count(read_only_api, settings):
    settings.API_COUNT_CACHE_S = 600
    site = Site.objects.create(code="depot", name="Depot")
    other = Site.objects.create(code="yard", name="Yard")
    make_sessions(ChargePoint.objects.create(identity="depot-1", site=site), 5, T0)
    make_sessions(ChargePoint.objects.create(identity="yard-1", site=other), 3, T0)

    counts = {
        query: read_only_api.get(f"/api/sessions/?page_size=1&{query}").json()["count"]
        for query in ["", "site=depot", "site=yard", "site=yard&active=true"]
    }

    assert counts == {
        "": 8,
        "site=depot": 5,
        "site=yard": 3,
        "site=yard&active=true": 3,
    }


@pytest.mark.parametrize(
    ("query", "status", "words"),
    [
        ("page=abc", 400, "page"),
        ("page=0", 400, "page"),
        ("page_size=-5", 400, "page_size"),
        ("page_size=lots", 400, "page_size"),
        ("page=9", 404, "past the last page"),
    ],
)
def test_bad_page_parameters_get_a_reason(
    read_only_api, varied_sessions, query, status, words
):
    response = read_only_api.get(f"/api/sessions/?{query}")

    assert response.status_code == status
    assert words in json.dumps(response.json())


def test_a_page_size_over_the_maximum_is_served_at_the_maximum(read_only_api):
    site = Site.objects.create(code="depot", name="Depot")
    make_sessions(ChargePoint.objects.create(identity="depot-1", site=site), 501, T0)

    body = read_only_api.get("/api/sessions/?page_size=100000000").json()

    assert len(body["results"]) == 500
    assert body["count"] == 501
    assert "page=2" in body["next"]


def test_filters_do_not_carry_over_between_requests(read_only_api, varied_sessions):
    token_only = read_only_api.get("/api/sessions/?token=04a2b3c4").json()
    everything = read_only_api.get("/api/sessions/").json()

    assert [row["id"] for row in token_only["results"]] == [varied_sessions[1].pk]
    assert everything["count"] == 3
