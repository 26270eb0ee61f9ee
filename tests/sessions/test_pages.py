"""The session list, its filters and CSV export, and the session page."""

import csv
import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import AsyncClient
from django.urls import reverse

from sessions.models import IdToken
from tests.page_helpers import (
    make_charge_point,
    make_samples,
    make_session,
    make_site,
    table_rows,
)

PACIFIC = ZoneInfo("America/Los_Angeles")


def pacific(*args) -> datetime:
    return datetime(*args, tzinfo=PACIFIC)


@pytest.fixture
def network(db):
    caltech = make_site("caltech")
    oslo = make_site("oslo", "Europe/Oslo")
    ca1 = make_charge_point(caltech, "CA-301")
    ca2 = make_charge_point(caltech, "CA-302")
    no1 = make_charge_point(oslo, "NO-1")
    alice = IdToken.objects.create(value="ALICE01", kind=IdToken.Kind.IMPORTED)
    bob = IdToken.objects.create(value="BOB02")
    s = {
        "late_14th": make_session(ca1, pacific(2021, 9, 14, 23, 30), token=alice),
        "noon_14th": make_session(ca2, pacific(2021, 9, 14, 12, 0), token=bob),
        "early_15th": make_session(ca1, pacific(2021, 9, 15, 0, 10), token=alice),
        "oslo_14th": make_session(
            no1, datetime(2021, 9, 14, 0, 30, tzinfo=ZoneInfo("Europe/Oslo"))
        ),
        "old": make_session(ca2, pacific(2019, 5, 1, 8, 0), energy_wh=12_345),
    }
    return {"sites": (caltech, oslo), "sessions": s}


def listed_ids(response) -> set[int]:
    return {int(r[0]) for r in table_rows(response.content, "session-table")[1:]}


def test_the_session_list_shows_every_session_newest_first(operator_client, network):
    response = operator_client.get(reverse("session_list"))

    rows = table_rows(response.content, "session-table")[1:]
    expected = sorted(
        network["sessions"].values(), key=lambda s: s.started_at, reverse=True
    )
    assert [int(r[0]) for r in rows] == [s.pk for s in expected]
    by_id = {int(r[0]): r for r in rows}
    late = by_id[network["sessions"]["late_14th"].pk]
    assert late[1:4] == ["Caltech", "CA-301", "2021-09-14 23:30 PDT"]
    assert late[5:7] == ["ALICE01", "5.000"]
    oslo = by_id[network["sessions"]["oslo_14th"].pk]
    assert oslo[3] == "2021-09-14 00:30 CEST"
    assert by_id[network["sessions"]["old"].pk][6] == "12.345"


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ({"site": "oslo"}, {"oslo_14th"}),
        ({"charge_point": "CA-302"}, {"noon_14th", "old"}),
        ({"token": "alice01"}, {"late_14th", "early_15th"}),
        # Local days: 23:30 on the 14th in Pasadena is the 15th in UTC, yet the 14th.
        (
            {"date_from": "2021-09-14", "date_to": "2021-09-14"},
            {"late_14th", "noon_14th", "oslo_14th"},
        ),
        ({"date_from": "2021-09-15"}, {"early_15th"}),
        ({"date_to": "2020-01-01"}, {"old"}),
        (
            {"site": "caltech", "token": "BOB02", "date_from": "2021-01-01"},
            {"noon_14th"},
        ),
    ],
)
def test_filters_return_the_matching_sessions(operator_client, network, query, names):
    response = operator_client.get(reverse("session_list"), query)

    assert listed_ids(response) == {network["sessions"][n].pk for n in names}
    assert f"{len(names)} session" in response.content.decode()


def test_an_unknown_site_in_the_filter_is_reported(operator_client, network):
    page = operator_client.get(reverse("session_list"), {"site": "atlantis"})
    export = operator_client.get(reverse("session_export"), {"site": "atlantis"})

    assert "Select a valid choice" in page.content.decode()
    assert export.status_code == 400
    assert "site" in export.content.decode()


def test_the_list_is_paginated_and_keeps_the_filter(operator_client, site):
    cp = make_charge_point(site)
    start = datetime(2021, 1, 1, tzinfo=UTC)
    sessions = [make_session(cp, start + timedelta(hours=i)) for i in range(60)]

    first = operator_client.get(reverse("session_list"), {"site": "campus"})
    second = operator_client.get(reverse("session_list"), {"site": "campus", "page": 2})

    assert len(listed_ids(first)) == 50
    assert listed_ids(second) == {s.pk for s in sessions[:10]}
    assert "site=campus&amp;page=2" in first.content.decode()


def read_csv(content: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(content.decode())))


def test_the_csv_export_holds_the_filtered_rows_with_local_and_utc_times(
    operator_client, network
):
    response = operator_client.get(
        reverse("session_export"), {"site": "caltech", "date_from": "2021-09-14"}
    )

    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = read_csv(b"".join(response.streaming_content))
    s = network["sessions"]
    assert [int(r["session_id"]) for r in rows] == [
        s["early_15th"].pk,
        s["late_14th"].pk,
        s["noon_14th"].pk,
    ]
    late = rows[1]
    assert late["started_local"] == "2021-09-14 23:30:00-07:00"
    assert late["started_utc"] == "2021-09-15 06:30:00+00:00"
    assert late["stopped_utc"] == "2021-09-15 08:30:00+00:00"
    assert late["time_zone"] == "America/Los_Angeles"
    assert (late["energy_kwh"], late["duration_min"]) == ("5.000", "120.0")
    assert (late["site"], late["charge_point"], late["token"]) == (
        "caltech",
        "CA-301",
        "ALICE01",
    )


def test_the_csv_export_of_many_rows_comes_in_chunks(
    operator_client, site, monkeypatch
):
    monkeypatch.setattr("sessions.selectors.EXPORT_CHUNK_SIZE", 7)
    cp = make_charge_point(site)
    start = datetime(2021, 1, 1, tzinfo=UTC)
    # Equal start times across a chunk boundary must neither repeat nor vanish.
    sessions = [make_session(cp, start + timedelta(hours=i // 3)) for i in range(25)]

    response = operator_client.get(reverse("session_export"))

    rows = read_csv(b"".join(response.streaming_content))
    assert sorted(int(r["session_id"]) for r in rows) == sorted(s.pk for s in sessions)
    assert len(rows) == 25


@pytest.mark.django_db(transaction=True)
async def test_the_csv_export_streams_under_asgi(operator_user, network):
    client = AsyncClient()
    await client.aforce_login(operator_user)

    response = await client.get(reverse("session_export"), {"site": "oslo"})
    body = b"".join([part async for part in response.streaming_content])
    # The view read the rows in Django's worker thread: close its connection there,
    # as a real ASGI server does when the request ends.
    await sync_to_async(connections.close_all)()

    assert response.streaming
    rows = read_csv(body)
    assert [int(r["session_id"]) for r in rows] == [network["sessions"]["oslo_14th"].pk]
    assert rows[0]["started_local"] == "2021-09-14 00:30:00+02:00"


def test_the_session_page_draws_power_and_energy_from_meter_samples(
    operator_client, site
):
    cp = make_charge_point(site)
    session = make_session(
        cp, pacific(2021, 6, 1, 9, 0), hours=1, energy_wh=6_600, meter_start_wh=1_000
    )
    make_samples(session, minutes=60, power_w=6_600, step_min=15)

    response = operator_client.get(reverse("session_detail", args=[session.pk]))

    chart = response.context["chart"]
    assert chart["labels"] == [
        "2021-06-01 09:00",
        "2021-06-01 09:15",
        "2021-06-01 09:30",
        "2021-06-01 09:45",
        "2021-06-01 10:00",
    ]
    assert chart["power_kw"] == [6.6] * 5
    assert chart["energy_kwh"] == [0.0, 1.65, 3.3, 4.95, 6.6]
    assert not chart["power_derived"]
    assert "10 meter samples" in response.content.decode()


def test_power_is_worked_out_from_the_energy_register_when_not_sampled(
    operator_client, site
):
    cp = make_charge_point(site)
    session = make_session(cp, pacific(2021, 6, 1, 9, 0), hours=1, energy_wh=3_000)
    make_samples(session, minutes=30, power_w=6_000, step_min=15)
    session.meter_samples.filter(measurand="Power.Active.Import").delete()

    response = operator_client.get(reverse("session_detail", args=[session.pk]))

    chart = response.context["chart"]
    assert chart["power_derived"]
    assert chart["power_kw"] == [None, 6.0, 6.0]
    assert "from the energy register" in response.content.decode()


def test_an_imported_session_without_samples_says_so_and_shows_its_figures(
    operator_client, site
):
    cp = make_charge_point(site)
    session = make_session(
        cp,
        pacific(2019, 9, 3, 7, 12),
        hours=4,
        energy_wh=8_765,
        requested_energy_wh=10_000,
        done_charging_at=pacific(2019, 9, 3, 9, 12),
    )

    response = operator_client.get(reverse("session_detail", args=[session.pk]))

    html = response.content.decode()
    assert response.context["chart"] is None
    assert "No meter samples were recorded for this session" in html
    assert "imported from a data set" in html
    assert "<canvas" not in html
    assert "8.765 kWh" in html
    assert "2019-09-03 07:12:00 PDT" in html
    # 8.765 kWh over the two hours until charging was done.
    assert "4.38 kW" in html


def test_an_unknown_session_is_404(operator_client, db):
    assert operator_client.get(reverse("session_detail", args=[999])).status_code == 404


@pytest.mark.parametrize("rows", [5, 50])
def test_the_session_list_uses_a_fixed_number_of_queries(
    operator_client, django_assert_max_num_queries, rows
):
    sites = [make_site("north"), make_site("oslo", "Europe/Oslo")]
    start = datetime(2021, 9, 1, 12, tzinfo=UTC)
    for i in range(rows):
        cp = make_charge_point(sites[i % 2])
        token = IdToken.objects.create(value=f"T{i}")
        make_session(cp, start + timedelta(hours=i), token=token)

    # Login session and user, site zones for the dates, count, the page's ids,
    # its rows, and the site and charger choices of the filter form.
    with django_assert_max_num_queries(8):
        response = operator_client.get(
            reverse("session_list"), {"date_from": "2021-09-01"}
        )

    assert len(listed_ids(response)) == rows


@pytest.mark.parametrize("bounds", ["date_to=9999-12-31", "date_from=0001-01-01"])
def test_session_list_accepts_dates_at_the_ends_of_the_calendar(
    operator_client, site, bounds
):
    response = operator_client.get(f"/sessions/?{bounds}")
    export = operator_client.get(f"/sessions/export.csv?{bounds}")

    assert response.status_code == 200
    assert export.status_code == 200
