"""The dashboard, the station list and the station page, as an operator sees them."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from stations.models import ChargePointStatus, StatusEvent
from tests.page_helpers import (
    make_charge_point,
    make_connector,
    make_session,
    make_site,
    table_rows,
)

PACIFIC = ZoneInfo("America/Los_Angeles")


def pacific(*args) -> datetime:
    return datetime(*args, tzinfo=PACIFIC)


@pytest.fixture
def history(db):
    """Two Pasadena-area sites whose data ends on 2021-09-14 (local), like ACN."""
    caltech = make_site("caltech")
    jpl = make_site("jpl")
    cp_a = make_charge_point(caltech, "CA-301")
    cp_b = make_charge_point(caltech, "CA-302")  # no connector rows: counts as one
    cp_j = make_charge_point(jpl, "AG-1F01", is_connected=True)
    make_connector(cp_a, status=ChargePointStatus.AVAILABLE)
    make_connector(cp_j, status=ChargePointStatus.CHARGING)
    sessions = [
        make_session(cp_a, pacific(2021, 9, 14, 8, 0), hours=3, energy_wh=10_000),
        # 23:30 local is already the 15th in UTC: it still belongs to the 14th.
        make_session(cp_b, pacific(2021, 9, 14, 23, 30), hours=1, energy_wh=2_000),
        make_session(cp_a, pacific(2021, 9, 2, 10, 0), hours=4, energy_wh=7_000),
        # 23:00 local on 31 August is 1 September in UTC: an August session.
        make_session(cp_b, pacific(2021, 8, 31, 23, 0), hours=2, energy_wh=3_000),
        make_session(cp_j, pacific(2021, 9, 14, 0, 30), hours=2, energy_wh=4_000),
        make_session(cp_j, pacific(2021, 9, 13, 23, 59), hours=1, energy_wh=1_000),
    ]
    return {"caltech": caltech, "jpl": jpl, "sessions": sessions}


def occupied_hours(sessions, start: datetime, end: datetime) -> float:
    total = timedelta()
    for s in sessions:
        overlap = min(s.stopped_at, end) - max(s.started_at, start)
        total += max(overlap, timedelta())
    return total.total_seconds() / 3600


def test_dashboard_shows_the_latest_data_day_and_its_figures(operator_client, history):
    sessions = history["sessions"]

    def local_day(s):
        return s.started_at.astimezone(PACIFIC).date()

    on_14th = [s for s in sessions if local_day(s).isoformat() == "2021-09-14"]
    in_sept = [s for s in sessions if local_day(s).strftime("%Y-%m") == "2021-09"]

    response = operator_client.get(reverse("dashboard"))

    assert response.status_code == 200
    assert "Latest data: 2021-09-14" in response.content.decode()
    rows = {r[0]: r[1:] for r in table_rows(response.content, "period-figures")}
    assert rows["Latest data day, 2021-09-14"] == [
        str(len(on_14th)),
        f"{sum(s.energy_wh for s in on_14th) / 1000:.1f}",
    ]
    assert rows["Its month, September 2021 (to 14 Sep)"] == [
        str(len(in_sept)),
        f"{sum(s.energy_wh for s in in_sept) / 1000:.1f}",
    ]
    assert rows["All time"] == ["6", "27.0"]
    assert rows["Today (each site's local day)"] == ["0", "0.0"]
    assert (len(on_14th), len(in_sept)) == (3, 5)


def test_dashboard_utilisation_is_the_share_of_connector_hours_occupied(
    operator_client, history
):
    sessions = history["sessions"]
    start = pacific(2021, 8, 16)
    end = pacific(2021, 9, 15)
    window_h = (end - start).total_seconds() / 3600
    caltech = [s for s in sessions if s.charge_point.site_id == history["caltech"].pk]
    jpl = [s for s in sessions if s.charge_point.site_id == history["jpl"].pk]

    response = operator_client.get(reverse("dashboard"))

    figures = dict(response.context["site_rows"])
    assert figures[history["caltech"]].utilisation == pytest.approx(
        occupied_hours(caltech, start, end) / (2 * window_h)
    )
    assert figures[history["jpl"]].utilisation == pytest.approx(
        occupied_hours(jpl, start, end) / window_h
    )
    # 9.5 h of 1440 connector-hours at Caltech: shown rounded to a whole percent.
    site_rows = table_rows(response.content, "site-figures")
    assert site_rows[1][0] == "Caltech" and site_rows[1][-1] == "1 %"


def test_dashboard_charts_daily_energy_per_site_for_the_last_30_days_of_data(
    operator_client, history
):
    response = operator_client.get(reverse("dashboard"))

    chart = response.context["chart"]
    assert len(chart["labels"]) == 30
    assert chart["labels"][0] == "2021-08-16" and chart["labels"][-1] == "2021-09-14"
    per_site = {
        d["label"]: dict(zip(chart["labels"], d["data"], strict=True))
        for d in chart["datasets"]
    }
    assert per_site["Caltech"]["2021-09-14"] == 12.0
    assert per_site["Caltech"]["2021-09-02"] == 7.0
    assert per_site["Caltech"]["2021-08-31"] == 3.0
    assert per_site["Jpl"]["2021-09-14"] == 4.0
    assert per_site["Jpl"]["2021-09-13"] == 1.0
    assert sum(per_site["Caltech"].values()) + sum(per_site["Jpl"].values()) == 27.0
    assert 'id="daily-energy-data"' in response.content.decode()


def test_dashboard_counts_chargers_by_status(operator_client, history):
    response = operator_client.get(reverse("dashboard"))

    status = response.context["status"]
    assert dict(status.by_status)["Available"] == 1
    assert dict(status.by_status)["Charging"] == 1
    assert (status.charge_points, status.connected, status.disconnected) == (3, 1, 2)


def test_dashboard_counts_sessions_of_today_on_a_live_network(operator_client, site):
    charge_point = make_charge_point(site)
    now = timezone.now()
    make_session(charge_point, now - timedelta(minutes=1), energy_wh=1_500)
    make_session(charge_point, now - timedelta(days=40), energy_wh=9_000)

    response = operator_client.get(reverse("dashboard"))

    totals = response.context["totals"]
    assert (totals.today.sessions, totals.today.energy_wh) == (1, 1_500)
    assert totals.all_time.energy_wh == 10_500
    assert (
        response.context["latest"].day
        == (now - timedelta(minutes=1)).astimezone(site.tz).date()
    )


def test_dashboard_with_no_data_says_how_to_get_some(operator_client, site):
    response = operator_client.get(reverse("dashboard"))

    assert response.status_code == 200
    assert "No charging sessions yet" in response.content.decode()


def test_station_list_groups_chargers_by_site(operator_client, history):
    cp = history["sessions"][0].charge_point
    cp.last_seen_at = datetime(2021, 9, 14, 16, 5, tzinfo=UTC)
    cp.save()

    response = operator_client.get(reverse("station_list"))

    html = response.content.decode()
    assert response.status_code == 200
    assert html.index('id="site-caltech"') < html.index('id="site-jpl"')
    rows = {
        r[0]: r for r in table_rows(html, "chargers-caltech") if r and r[0] != "Charger"
    }
    # last seen 16:05 UTC is 09:05 in Pasadena (PDT).
    assert rows["CA-301"][3] == "2021-09-14 09:05"
    assert rows["CA-301"][2] == "#1 Available"
    assert rows["CA-301"][5] == "2"
    assert rows["CA-302"][2] == "none reported"
    assert rows["CA-302"][3] == "never connected"
    assert rows["CA-302"][5] == "2"
    assert 'href="/stations/CA-301/"' in html
    assert 'href="/sessions/?charge_point=CA-301"' in html


def test_station_page_shows_connectors_sessions_and_status_history(
    operator_client, history
):
    cp = history["sessions"][4].charge_point
    StatusEvent.objects.create(
        charge_point=cp,
        connector=cp.connectors.get(),
        connector_number=1,
        status="Faulted",
        error_code="GroundFailure",
        timestamp=datetime(2021, 9, 14, 20, 0, tzinfo=UTC),
    )

    response = operator_client.get(reverse("station_detail", args=[cp.identity]))

    assert response.status_code == 200
    connectors = table_rows(response.content, "connectors")
    assert connectors[1][:2] == ["1", "Charging"]
    sessions = table_rows(response.content, "recent-sessions")[1:]
    assert [r[2] for r in sessions] == ["2021-09-14 00:30 PDT", "2021-09-13 23:59 PDT"]
    assert [r[5] for r in sessions] == ["4.000", "1.000"]
    history_rows = table_rows(response.content, "status-history")[1:]
    assert history_rows == [
        ["2021-09-14 13:00:00 PDT", "1", "Faulted", "GroundFailure", ""]
    ]


def test_station_page_of_an_unknown_charger_is_404(operator_client, db):
    response = operator_client.get(reverse("station_detail", args=["nope"]))

    assert response.status_code == 404


# Login session and user (2), then per page: the dashboard reads sites, the latest
# session, the charger ids per site, recent and all-time figures (2), connector
# capacity, status counts (2)
# and per time zone utilisation and daily energy (2 zones here); the station list
# reads sites, charge points with their counts, and connectors.
# The dashboard reads its figures in 14 queries, its open alerts in one more and
# tomorrow's forecasts in three.
QUERY_LIMITS = {"dashboard": 18, "station_list": 5}


@pytest.mark.parametrize("rows", [5, 50])
@pytest.mark.parametrize("page", ["dashboard", "station_list"])
def test_station_pages_use_a_fixed_number_of_queries(
    operator_client, django_assert_max_num_queries, page, rows
):
    sites = [make_site("north"), make_site("oslo", "Europe/Oslo")]
    start = datetime(2021, 9, 1, 12, tzinfo=UTC)
    for i in range(rows):
        cp = make_charge_point(sites[i % 2])
        make_connector(cp)
        make_session(cp, start + timedelta(hours=i))

    with django_assert_max_num_queries(QUERY_LIMITS[page]):
        response = operator_client.get(reverse(page))

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("page", "message"),
    [
        ("dashboard", "No charging sessions yet"),
        ("station_list", "No sites yet"),
        ("session_list", "No sessions match these filters"),
    ],
)
def test_pages_of_an_empty_portal_say_there_is_nothing_yet(
    operator_client, db, page, message
):
    response = operator_client.get(reverse(page))

    assert response.status_code == 200
    assert message in response.content.decode()
