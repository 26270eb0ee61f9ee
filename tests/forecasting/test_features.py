"""Feature code: local clock hours, workplace holidays, what is known at plug-in."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from forecasting.ml.calendar import is_holiday, local_lag
from forecasting.ml.features import hourly_features, session_features
from forecasting.ml.frames import sessions_frame_normalise
from forecasting.ml.series import site_hourly_series

LA = "America/Los_Angeles"


def _hourly(start: str, end: str) -> pd.Series:
    """An hourly UTC series whose value is its own local clock hour."""
    index = pd.date_range(start, end, freq="h", tz="UTC", inclusive="left")
    return pd.Series(index.tz_convert(LA).hour.astype(float), index=index)


def test_weekly_lags_read_the_same_local_hour_across_the_autumn_change():
    values = _hourly("2019-10-25", "2019-11-12")
    # 08:00 in Los Angeles on Monday 4 November 2019 (PST), the day after the
    # clocks went back: a week earlier 08:00 PDT was 169 UTC hours before.
    hour = pd.Timestamp("2019-11-04 08:00", tz=LA).tz_convert("UTC")

    week_back = local_lag(values, days=7, time_zone=LA, min_age_h=48)

    assert week_back[hour] == 8
    assert values.shift(168)[hour] == 9  # a UTC lag reads 09:00 local


def test_a_local_lag_younger_than_the_horizon_is_missing():
    values = _hourly("2020-03-05", "2020-03-12")
    # Two local days before 09:00 on Monday 9 March 2020 is 47 hours back
    # (clocks went forward on the 8th): not yet known two days ahead.
    hour = pd.Timestamp("2020-03-09 09:00", tz=LA).tz_convert("UTC")

    two_days = local_lag(values, days=2, time_zone=LA, min_age_h=48)

    assert np.isnan(two_days[hour])
    assert local_lag(values, days=2, time_zone=LA, min_age_h=47)[hour] == 9


@pytest.mark.parametrize(
    ("day", "closed"),
    [
        (date(2019, 11, 11), False),  # Veterans Day: campuses and labs work
        (date(2019, 11, 28), True),  # Thanksgiving
        (date(2019, 11, 29), True),  # the day after
        (date(2019, 12, 24), True),  # Christmas Eve
        (date(2020, 3, 31), False),  # Cesar Chavez Day
        (date(2021, 7, 5), True),  # Independence Day observed on the Monday
        (date(2019, 11, 12), False),
    ],
)
def test_holidays_are_the_days_a_workplace_closes(day, closed):
    assert is_holiday(day) is closed


def _sessions(rows: list[tuple]) -> pd.DataFrame:
    return sessions_frame_normalise(
        pd.DataFrame(
            [
                {
                    "session_id": str(i),
                    "site": "hq",
                    "station": station,
                    "token": token,
                    "started_at": pd.to_datetime(start, utc=True),
                    "stopped_at": pd.to_datetime(stop, utc=True),
                    "energy_kwh": kwh,
                }
                for i, (station, token, start, stop, kwh) in enumerate(rows)
            ]
        )
    )


def test_session_features_use_only_what_is_known_at_plug_in():
    frame = _sessions(
        [
            ("A", "t1", "2024-04-01 08:00", "2024-04-01 17:00", 10.0),
            ("B", "t2", "2024-04-01 09:00", "2024-04-01 10:00", 2.0),
            ("C", "t3", "2024-04-01 11:00", "2024-04-01 12:00", 4.0),
        ]
    )

    table, targets = session_features(frame, time_zone=LA)

    third = table.iloc[2]
    # At 11:00 only B had left: A's 10 kWh were not known yet.
    assert third["site_energy_mean_200"] == 2.0
    assert third["site_duration_mean_200"] == 1.0
    assert third["site_plugged_in_at_arrival"] == 1  # A still plugged in
    assert third["site_arrivals_last_2h"] == 1  # B at 09:00; A is three hours back
    assert np.isnan(table.iloc[0]["site_energy_mean_200"])
    assert list(targets["energy_kwh"]) == [10.0, 2.0, 4.0]


def test_a_sessions_own_token_history_comes_from_its_earlier_sessions():
    frame = _sessions(
        [
            ("A", "t1", "2024-04-01 08:00", "2024-04-01 12:00", 8.0),
            ("A", "t1", "2024-04-02 08:00", "2024-04-02 10:00", 4.0),
            ("A", "t1", "2024-04-03 08:00", None, np.nan),  # plugged in now
        ]
    )

    table, targets = session_features(frame, time_zone=LA)

    now = table.iloc[2]
    assert now["token_sessions"] == 2
    assert now["token_energy_median_5"] == 6.0
    assert now["token_duration_median_3"] == 3.0
    assert 4.0 < now["token_energy_ewm"] < 6.0  # the latest session weighs more
    assert np.isnan(targets["energy_kwh"].iloc[2])


def test_hourly_features_of_a_holiday_start_from_the_sundays_before():
    # Four weeks of a site busy on workdays (10 kWh from 08:00 to 09:00 local)
    # and quiet on Sundays (1 kWh), then Thanksgiving 2019.
    rows = []
    for day in pd.date_range("2019-10-27", "2019-11-27", freq="D"):
        kwh = 1.0 if day.day_of_week == 6 else 10.0
        if day.day_of_week != 5:
            start = pd.Timestamp(day.date().isoformat() + " 08:00", tz=LA)
            rows.append(("A", None, start, start + pd.Timedelta(hours=5), kwh))
    frame = _sessions(
        [(s, t, a.tz_convert("UTC"), b.tz_convert("UTC"), k) for s, t, a, b, k in rows]
    )
    series = site_hourly_series(frame)
    until = pd.Timestamp("2019-11-29", tz=LA).tz_convert("UTC")

    table = hourly_features(series, target="energy_kwh", time_zone=LA, until=until)

    thanksgiving_8am = pd.Timestamp("2019-11-28 08:00", tz=LA).tz_convert("UTC")
    wednesday_8am = pd.Timestamp("2019-11-27 08:00", tz=LA).tz_convert("UTC")
    assert table.at[thanksgiving_8am, "is_holiday"] == 1
    assert table.at[thanksgiving_8am, "day_profile"] == pytest.approx(1.0)
    assert table.at[wednesday_8am, "day_profile"] == pytest.approx(6.6)


def test_the_day_profile_follows_a_site_whose_demand_doubled():
    # Twelve weeks of 5 kWh each morning, then 10 kWh for the last ten days.
    rows = []
    for day in pd.date_range("2024-01-01", "2024-04-01", freq="D"):
        start = pd.Timestamp(day.date().isoformat() + " 08:00", tz=LA)
        kwh = 10.0 if day >= pd.Timestamp("2024-03-23") else 5.0
        rows.append(("A", None, start, start + pd.Timedelta(hours=4), kwh))
    frame = _sessions(
        [(s, t, a.tz_convert("UTC"), b.tz_convert("UTC"), k) for s, t, a, b, k in rows]
    )
    series = site_hourly_series(frame)
    until = pd.Timestamp("2024-04-03", tz=LA).tz_convert("UTC")

    table = hourly_features(series, target="energy_kwh", time_zone=LA, until=until)

    # 08:00 on 2 April: the week that ended two days before held twice the usual.
    hour = pd.Timestamp("2024-04-02 08:00", tz=LA).tz_convert("UTC")
    assert table.at[hour, "usual_profile"] == pytest.approx(5.0)
    assert table.at[hour, "day_profile"] == pytest.approx(10.0)


def test_prediction_needs_only_the_history_the_features_read():
    from forecasting.ml.features import FEATURE_HISTORY_DAYS, HOURLY_FEATURES
    from forecasting.ml.frames import acn_csv_read
    from tests.forecasting.conftest import CALTECH_FILE

    # Caltech, Sep-Dec 2019: 122 days, longer than the history kept.
    series = site_hourly_series(acn_csv_read(CALTECH_FILE, site="caltech"))
    end = series.index[-1] + pd.Timedelta(hours=1)
    hours = pd.date_range(end, periods=48, freq="h")
    until = hours[-1] + pd.Timedelta(hours=1)
    recent = series[series.index >= hours[0] - pd.Timedelta(days=FEATURE_HISTORY_DAYS)]

    whole = hourly_features(series, target="energy_kwh", time_zone=LA, until=until)
    trimmed = hourly_features(recent, target="energy_kwh", time_zone=LA, until=until)

    assert len(recent) < len(series) - 24 * 14
    columns = [c for c in whole.columns if c != "target"]
    pd.testing.assert_frame_equal(
        trimmed.loc[hours, columns], whole.loc[hours, columns]
    )
    assert whole.loc[hours, HOURLY_FEATURES].notna().any().all()
