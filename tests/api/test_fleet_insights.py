"""Fleet insights against figures worked out by hand.

The site is in Pasadena (America/Los_Angeles, UTC-8 in December); peak hours
are 16:00-21:00 local (the default). Range: Mon 2019-12-02 .. Sun 2019-12-08,
so the next day is Mon 2019-12-09.
"""

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from forecasting.insights import fleet_insights
from sessions.models import ChargingSession, Fleet, MeterSample, Vehicle

pytestmark = pytest.mark.django_db
LA = ZoneInfo("America/Los_Angeles")


def local(day: str, hour: int, minute: int = 0) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:{minute:02d}").replace(tzinfo=LA)


@pytest.fixture
def fleet_history(charge_point):
    vans = Fleet.objects.create(name="Vans")
    cars = Fleet.objects.create(name="Cars")
    van_a = Vehicle.objects.create(name="Van A", fleet=vans)
    van_b = Vehicle.objects.create(name="Van B", fleet=vans)
    car_c = Vehicle.objects.create(name="Car C", fleet=cars)
    loner = Vehicle.objects.create(name="Loner D")

    def session(vehicle, start, stop, energy_wh, done=None):
        return ChargingSession.objects.create(
            charge_point=charge_point,
            vehicle=vehicle,
            started_at=start,
            stopped_at=stop,
            done_charging_at=done,
            energy_wh=energy_wh,
        )

    # Van A: history before the range (for the baseline) and two sessions in it.
    session(van_a, local("2019-11-20", 9), local("2019-11-20", 12), 7000)  # Wed
    session(van_a, local("2019-11-25", 9), local("2019-11-25", 12), 4000)  # Mon
    # 14:00-19:00, charging until 17:00: 2 h idle; 6 kWh over 3 h, 1 h in peak.
    session(
        van_a,
        local("2019-12-02", 14),
        local("2019-12-02", 19),
        6000,
        done=local("2019-12-02", 17),
    )
    # 08:00-17:00, charging until 10:00: 7 h idle, nothing in peak.
    session(
        van_a,
        local("2019-12-03", 8),
        local("2019-12-03", 17),
        10000,
        done=local("2019-12-03", 10),
    )

    # Van B: the end of charging comes from meter samples (register full at 17:00).
    metered = session(van_b, local("2019-12-04", 15), local("2019-12-04", 20), 5000)
    for hour, minute, wh in [
        (15, 0, 0),
        (16, 0, 2500),
        (17, 0, 5000),
        (18, 0, 5000),
        (19, 30, 5000),
    ]:
        MeterSample.objects.create(
            session=metered,
            charge_point=charge_point,
            timestamp=local("2019-12-04", hour, minute),
            raw_value=str(wh),
            unit="Wh",
            value=wh,
            normalised_unit="Wh",
        )
    # Overnight, end of charging unknown: spread 22:00-06:00, no peak, no idle.
    session(van_b, local("2019-12-05", 22), local("2019-12-06", 6), 8000)
    # Still plugged in: left out.
    session(van_b, local("2019-12-07", 9), None, None)

    # Car C: 20:00-23:30, charging to 23:00 -> 1 of 3 h in peak.
    session(
        car_c,
        local("2019-12-06", 20),
        local("2019-12-06", 23, 30),
        3000,
        done=local("2019-12-06", 23),
    )
    # Sunday 20:00 local is Monday 04:00 UTC: still in the range by local day.
    session(
        car_c,
        local("2019-12-08", 20),
        local("2019-12-08", 21),
        1000,
        done=local("2019-12-08", 21),
    )
    # The day after the range: not counted.
    session(car_c, local("2019-12-09", 10), local("2019-12-09", 12), 9000)

    session(
        loner,
        local("2019-12-03", 12),
        local("2019-12-03", 13),
        2000,
        done=local("2019-12-03", 12, 30),
    )
    return {"vans": vans, "cars": cars, "a": van_a, "b": van_b, "c": car_c}


def by_name(items):
    return {item.name: item for item in items}


def test_fleet_and_vehicle_figures_match_the_hand_computed_ones(fleet_history):
    insights = fleet_insights(date_from=date(2019, 12, 2), date_to=date(2019, 12, 8))

    fleets = by_name(insights.fleets)
    assert [f.name for f in insights.fleets] == [
        "Cars",
        "Vans",
        "Vehicles without a fleet",
    ]
    assert insights.next_day == date(2019, 12, 9)
    assert insights.active_sessions_excluded == 1

    vans = fleets["Vans"].figures
    assert vans.sessions == 4
    assert vans.energy_kwh == 29.0
    assert vans.avg_duration_h == pytest.approx((5 + 9 + 5 + 8) / 4)
    assert vans.avg_idle_h == pytest.approx((2 + 7 + 3) / 3)
    assert vans.idle_known_sessions == 3
    assert vans.peak_energy_kwh == pytest.approx(2.0 + 2.5)
    assert vans.peak_share == pytest.approx(4.5 / 29, abs=1e-4)

    vehicles = by_name(fleets["Vans"].vehicles)
    a, b = vehicles["Van A"].figures, vehicles["Van B"].figures
    assert (a.sessions, a.energy_kwh, a.avg_duration_h, a.avg_idle_h) == (
        2,
        16.0,
        7.0,
        4.5,
    )
    assert a.peak_energy_kwh == 2.0
    assert a.peak_share == 0.125
    assert (b.sessions, b.energy_kwh, b.avg_duration_h, b.avg_idle_h) == (
        2,
        13.0,
        6.5,
        3.0,
    )
    assert b.idle_known_sessions == 1
    assert b.peak_energy_kwh == 2.5

    cars = fleets["Cars"].figures
    assert (cars.sessions, cars.energy_kwh) == (2, 4.0)
    assert cars.avg_duration_h == pytest.approx(2.25)
    assert cars.avg_idle_h == pytest.approx(0.25)
    assert cars.peak_energy_kwh == pytest.approx(2.0)
    assert cars.peak_share == 0.5

    loner = fleets["Vehicles without a fleet"]
    assert loner.fleet_id is None
    assert loner.figures.energy_kwh == 2.0
    assert loner.figures.peak_share == 0.0


def test_next_day_is_the_labelled_same_weekday_baseline(fleet_history):
    insights = fleet_insights(date_from=date(2019, 12, 2), date_to=date(2019, 12, 8))
    vans = by_name(insights.fleets)["Vans"]
    vehicles = by_name(vans.vehicles)

    # Mondays since Van A's first session (Wed 11-20): 11-25 (4 kWh), 12-02 (6 kWh).
    a = vehicles["Van A"].next_day
    assert a.is_baseline
    assert a.method == "baseline_same_weekday_4w"
    assert a.model_version is None
    assert a.day == date(2019, 12, 9)
    assert (a.energy_kwh, a.basis_days) == (5.0, 2)
    # Van B started on Wed 12-04: no Monday of history, so no number at all.
    assert vehicles["Van B"].next_day.energy_kwh is None
    assert vans.next_day.energy_kwh == 5.0
    assert "1 vehicle(s) without history" in vans.next_day.note


def test_peak_window_follows_the_setting(fleet_history, settings):
    settings.FLEET_PEAK_START_HOUR, settings.FLEET_PEAK_END_HOUR = 8, 10

    insights = fleet_insights(date_from=date(2019, 12, 2), date_to=date(2019, 12, 8))

    # Van A on 12-03 charged 08:00-10:00, all of it now in peak: 10 kWh of 16.
    van_a = by_name(by_name(insights.fleets)["Vans"].vehicles)["Van A"].figures
    assert van_a.peak_energy_kwh == 10.0


def test_api_answers_the_same_figures_for_one_fleet(read_only_api, fleet_history):
    cars = fleet_history["cars"]

    response = read_only_api.get(
        "/api/ml/fleet-insights/",
        {"date_from": "2019-12-02", "date_to": "2019-12-08", "fleet": cars.pk},
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["next_day"] == "2019-12-09"
    assert [f["name"] for f in body["fleets"]] == ["Cars"]
    figures = body["fleets"][0]["figures"]
    assert figures["sessions"] == 2
    assert figures["energy_kwh"] == 4.0
    assert figures["peak_share"] == 0.5
    assert body["fleets"][0]["vehicles"][0]["name"] == "Car C"


def test_api_defaults_to_the_four_weeks_up_to_the_latest_session(
    read_only_api, fleet_history
):
    response = read_only_api.get("/api/ml/fleet-insights/")

    body = response.json()
    assert response.status_code == 200
    assert body["date_to"] == "2019-12-09"
    assert body["date_from"] == "2019-11-12"


@pytest.mark.parametrize(
    "params",
    [
        {"date_from": "2019-12-08", "date_to": "2019-12-01"},
        {"date_from": "not-a-date"},
        {"date_from": "2018-01-01", "date_to": "2019-12-31"},
        {"fleet": "999999"},
    ],
)
def test_api_refuses_bad_ranges_with_a_reason(read_only_api, params):
    response = read_only_api.get("/api/ml/fleet-insights/", params)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert response.json()["fields"]


def test_the_page_shows_the_same_figures_to_a_logged_in_operator(
    operator_client, fleet_history
):
    response = operator_client.get(
        "/forecasts/fleet-insights/",
        {"date_from": "2019-12-02", "date_to": "2019-12-08"},
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "Vans" in page and "Van A" in page and "Loner D" in page
    assert "29.0" in page  # the Vans' energy in kWh
    assert "16%" in page  # the Vans' peak share, 4.5 of 29 kWh
    assert "baseline" in page


def test_the_page_needs_a_login(client):
    response = client.get("/forecasts/fleet-insights/")

    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_the_page_explains_a_bad_range_instead_of_failing(operator_client, db):
    response = operator_client.get(
        "/forecasts/fleet-insights/",
        {"date_from": "2019-12-08", "date_to": "2019-12-01"},
    )

    assert response.status_code == 400
    assert "The last day is before the first." in response.content.decode()


def test_next_day_uses_the_site_forecast_when_it_covers_that_day(fleet_history, site):
    from forecasting.selectors import tomorrow_energy

    # The forecast runs from the site's latest data; a session still plugged in
    # would make that "now", so this history ends with the last stop.
    ChargingSession.objects.filter(stopped_at__isnull=True).delete()
    site_forecast = tomorrow_energy(site=site)
    assert site_forecast.day == date(2019, 12, 10)  # the day after the latest data
    assert site_forecast.energy_kwh > 0

    insights = fleet_insights(date_from=date(2019, 12, 3), date_to=date(2019, 12, 9))

    fleets = by_name(insights.fleets)
    car_c = fleets["Cars"].vehicles[0].next_day
    van_a = by_name(fleets["Vans"].vehicles)["Van A"].next_day
    # Four weeks before 12-10 the site delivered 55 kWh: Car C took 13, Van A 27.
    assert car_c.method == van_a.method == "site_forecast_share"
    assert car_c.is_baseline == site_forecast.is_baseline
    assert car_c.energy_kwh == pytest.approx(
        site_forecast.energy_kwh * 13 / 55, abs=1e-3
    )
    assert van_a.energy_kwh == pytest.approx(
        site_forecast.energy_kwh * 27 / 55, abs=1e-3
    )
    assert site_forecast.label in car_c.label


def test_the_api_answer_is_kept_for_a_minute(
    read_only_api, fleet_history, django_assert_max_num_queries
):
    params = {"date_from": "2019-12-02", "date_to": "2019-12-08"}
    first = read_only_api.get("/api/ml/fleet-insights/", params)

    with django_assert_max_num_queries(2):  # the key, the latest session day
        again = read_only_api.get("/api/ml/fleet-insights/", params)

    assert again.json() == first.json()
