"""Feature tables for the two forecasting tasks.

Site demand (hourly): every feature of a target hour uses only data at least
``HORIZON_H`` hours old, so one model serves every hour of the next two days
and the backtest is a true two-day-ahead forecast. "Same hour yesterday" is
therefore the same hour two days back (``lag_48``); "last week" is ``lag_168``.

Session outcome (at plug-in): time of day, weekday, holiday, the token's (or
vehicle's) earlier sessions, the charge point's and the site's recent sessions.
"""

from datetime import date
from functools import lru_cache

import holidays
import numpy as np
import pandas as pd

from forecasting.ml.frames import duration_hours

HORIZON_H = 48
WEEK_H = 168


@lru_cache(maxsize=8)
def _holiday_calendar(subdiv: str | None) -> holidays.HolidayBase:
    # US federal and state holidays plus the days most US workplaces also close
    # or empty out (Christmas Eve, New Year's Eve): the "unofficial" category.
    return holidays.US(
        subdiv=subdiv, years=range(2010, 2041), categories=("public", "unofficial")
    )


# Holidays of the "unofficial" category that empty no car park.
_IGNORED_HOLIDAYS = {
    "Groundhog Day",
    "Valentine's Day",
    "Saint Patrick's Day",
    "Easter Sunday",
    "Mother's Day",
    "Father's Day",
    "Halloween",
}


def is_holiday(day: date, *, subdiv: str | None = "CA") -> bool:
    """True on US (and, by default, California) holidays and year-end eves."""
    names = _holiday_calendar(subdiv).get_list(day)
    return any(name not in _IGNORED_HOLIDAYS for name in names)


def _holiday_flags(local_days: pd.Series) -> np.ndarray:
    unique = pd.unique(local_days)
    flags = {d: is_holiday(d) for d in unique}
    return local_days.map(flags).to_numpy(dtype=float)


def _year_end(local: pd.DatetimeIndex) -> np.ndarray:
    """Dec 24 to Jan 1: the week campuses and offices largely close."""
    month, day = local.month, local.day
    return (((month == 12) & (day >= 24)) | ((month == 1) & (day <= 1))).astype(float)


def calendar_features(hours: pd.DatetimeIndex, *, time_zone: str) -> pd.DataFrame:
    local = hours.tz_convert(time_zone)
    days = pd.Series(local.date, index=hours)
    frame = pd.DataFrame(index=hours)
    frame["hour_local"] = local.hour.astype(float)
    frame["weekday"] = local.day_of_week.astype(float)
    frame["is_weekend"] = (local.day_of_week >= 5).astype(float)
    frame["is_holiday"] = _holiday_flags(days)
    frame["year_end"] = _year_end(local)
    week_ago = pd.Series((local - pd.Timedelta(days=7)).date, index=hours, dtype=object)
    frame["holiday_week_ago"] = _holiday_flags(week_ago)
    return frame


HOURLY_FEATURES = [
    "hour_local",
    "weekday",
    "is_weekend",
    "is_holiday",
    "year_end",
    "holiday_week_ago",
    "lag_48",
    "lag_72",
    "lag_168",
    "lag_336",
    "same_hour_mean_4w",
    "same_hour_max_4w",
    "same_hour_mean_7d",
    "mean_24h",
    "mean_168h",
    "workday_same_hour_mean",
    "other_lag_168",
    "other_same_hour_mean_4w",
]


def hourly_features(
    series: pd.DataFrame, *, target: str, time_zone: str, until: pd.Timestamp
) -> pd.DataFrame:
    """Features of every hour of ``series`` and of the hours up to ``until``.

    ``series`` is the output of ``site_hourly_series``; ``target`` is
    ``energy_kwh`` or ``plugged_in``. Hours after the series end get features
    too (their lags reach back into the series), with a NaN target.
    """
    index = pd.date_range(series.index[0], until, freq="h", inclusive="left")
    full = series.reindex(index)
    known = full["missing"].eq(False)
    values = full[target].where(known)
    other_name = "plugged_in" if target == "energy_kwh" else "energy_kwh"
    other = full[other_name].where(known)
    cal = calendar_features(index, time_zone=time_zone)

    frame = cal.copy()
    for lag in (48, 72, 168, 336):
        frame[f"lag_{lag}"] = values.shift(lag)
    weekly = pd.concat([values.shift(WEEK_H * k) for k in (1, 2, 3, 4)], axis=1)
    frame["same_hour_mean_4w"] = weekly.mean(axis=1)
    frame["same_hour_max_4w"] = weekly.max(axis=1)
    daily = pd.concat([values.shift(24 * k) for k in range(2, 9)], axis=1)
    frame["same_hour_mean_7d"] = daily.mean(axis=1)
    # Same hour on recent workdays only: the level a normal weekday starts from.
    workday = (cal["is_weekend"] + cal["is_holiday"]).eq(0)
    workday_values = values.where(workday)
    workday_daily = pd.concat(
        [workday_values.shift(24 * k) for k in range(2, 16)], axis=1
    )
    frame["workday_same_hour_mean"] = workday_daily.mean(axis=1)
    shifted = values.shift(HORIZON_H)
    frame["mean_24h"] = shifted.rolling(24, min_periods=12).mean()
    frame["mean_168h"] = shifted.rolling(WEEK_H, min_periods=84).mean()
    frame["other_lag_168"] = other.shift(WEEK_H)
    frame["other_same_hour_mean_4w"] = pd.concat(
        [other.shift(WEEK_H * k) for k in (1, 2, 3, 4)], axis=1
    ).mean(axis=1)

    frame["target"] = values
    return frame[[*HOURLY_FEATURES, "target"]]


SESSION_FEATURES = [
    "hour_local",
    "weekday",
    "is_weekend",
    "is_holiday",
    "token_known",
    "token_sessions",
    "token_energy_last",
    "token_energy_mean_5",
    "token_energy_median",
    "token_energy_std",
    "token_duration_last",
    "token_duration_mean_5",
    "token_duration_median",
    "token_arrival_hour_mean",
    "token_days_since_last",
    "token_same_weekday_duration",
    "token_departure_hour_mean",
    "token_habit_duration",
    "token_energy_max_10",
    "token_charge_rate",
    "station_energy_mean_20",
    "station_duration_mean_20",
    "site_energy_mean_200",
    "site_duration_mean_200",
]


def _history_stat(values: pd.Series, groups: pd.Series, window: int | None, how: str):
    """Statistic of the earlier rows of each group (the current row excluded)."""
    shifted = values.groupby(groups, sort=False).shift(1)
    grouped = shifted.groupby(groups, sort=False)
    if window is None:
        rolled = grouped.expanding(min_periods=1)
    else:
        rolled = grouped.rolling(window, min_periods=1)
    result = getattr(rolled, how)()
    return result.reset_index(level=0, drop=True).reindex(values.index)


def _token_history(
    frame: pd.DataFrame,
    energy: pd.Series,
    duration: pd.Series,
    arrival_hour: pd.Series,
    weekday: pd.Series,
) -> pd.DataFrame:
    """History of each row's token, from its earlier sessions only."""
    token = frame["token"].astype(str)
    out = pd.DataFrame(index=frame.index)
    out["token_sessions"] = frame.groupby(token, sort=False).cumcount().astype(float)
    out["token_energy_last"] = energy.groupby(token, sort=False).shift(1)
    out["token_energy_mean_5"] = _history_stat(energy, token, 5, "mean")
    out["token_energy_median"] = _history_stat(energy, token, None, "median")
    out["token_energy_std"] = _history_stat(energy, token, 10, "std")
    out["token_duration_last"] = duration.groupby(token, sort=False).shift(1)
    out["token_duration_mean_5"] = _history_stat(duration, token, 5, "mean")
    out["token_duration_median"] = _history_stat(duration, token, None, "median")
    out["token_arrival_hour_mean"] = _history_stat(arrival_hour, token, 10, "mean")
    start_days = frame["started_at"].astype("int64") / 86_400e9
    out["token_days_since_last"] = start_days - start_days.groupby(
        token, sort=False
    ).shift(1)
    token_weekday = token + "|" + weekday.astype(str)
    out["token_same_weekday_duration"] = _history_stat(
        duration, token_weekday, 5, "mean"
    )
    # Commuters leave at a habitual hour whatever time they arrive: the hours
    # from this arrival to that usual departure (trees cannot subtract).
    departure_hour = arrival_hour + duration
    out["token_departure_hour_mean"] = _history_stat(departure_hour, token, 10, "mean")
    out["token_habit_duration"] = out["token_departure_hour_mean"] - arrival_hour
    out["token_energy_max_10"] = _history_stat(energy, token, 10, "max")
    # Delivered kWh per hour plugged in (stays under 15 min count as 15 min).
    rate = energy / duration.clip(lower=0.25)
    out["token_charge_rate"] = _history_stat(rate, token, 10, "median")
    return out


def session_features(
    sessions: pd.DataFrame, *, time_zone: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Features at plug-in of every session, and its targets.

    ``sessions`` must be sorted by ``started_at``. Rows that are still open (no
    departure yet) get features from all earlier finished history and NaN
    targets. History statistics of a row use the token's, station's and site's
    earlier sessions only.
    """
    frame = sessions.reset_index(drop=True)
    local = pd.DatetimeIndex(frame["started_at"]).tz_convert(time_zone)
    energy = frame["energy_kwh"].astype(float)
    duration = pd.Series(duration_hours(frame), index=frame.index)
    arrival_hour = pd.Series(local.hour + local.minute / 60, index=frame.index)

    out = pd.DataFrame(index=frame.index)
    out["hour_local"] = arrival_hour
    out["weekday"] = local.day_of_week.astype(float)
    out["is_weekend"] = (local.day_of_week >= 5).astype(float)
    out["is_holiday"] = _holiday_flags(pd.Series(local.date, index=frame.index))

    has_token = frame["token"].notna().to_numpy()
    out["token_known"] = has_token.astype(float)
    token_columns = _token_history(
        frame[has_token],
        energy[has_token],
        duration[has_token],
        arrival_hour[has_token],
        out.loc[has_token, "weekday"],
    )
    for column in token_columns:
        out[column] = token_columns[column].reindex(frame.index)
    station = frame["station"].fillna("")
    out["station_energy_mean_20"] = _history_stat(energy, station, 20, "mean")
    out["station_duration_mean_20"] = _history_stat(duration, station, 20, "mean")
    site = frame["site"].fillna("")
    out["site_energy_mean_200"] = _history_stat(energy, site, 200, "mean")
    out["site_duration_mean_200"] = _history_stat(duration, site, 200, "mean")

    targets = pd.DataFrame({"energy_kwh": energy, "duration_h": duration})
    return out[SESSION_FEATURES].astype(float), targets
