"""Calendar of a workplace car park: days off, the year-end week, local time.

A public holiday matters to a forecast only when the workplace around the
chargers closes. US universities, labs and most private employers close on the
federal holidays except Columbus Day and Veterans Day, on the day after
Thanksgiving, and on Christmas Eve and New Year's Eve; they stay open on
California's own days (Cesar Chavez Day) and on observances such as Good
Friday or Election Day. The ACN data agrees where it can tell: on Veterans Day
2019 (Monday 11 November) both sites had a normal Monday (Caltech 404 kWh
against 385 kWh a week before, JPL 1,091 kWh against 1,278 kWh), while the
day after Thanksgiving both stood nearly empty (92 and 38 kWh).
"""

from datetime import date
from functools import lru_cache

import holidays
import numpy as np
import pandas as pd


@lru_cache(maxsize=8)
def _holiday_calendar(subdiv: str | None) -> holidays.HolidayBase:
    # "unofficial" brings Christmas Eve and New Year's Eve, which empty US
    # workplaces, together with observances filtered out below.
    return holidays.US(
        subdiv=subdiv, years=range(2010, 2041), categories=("public", "unofficial")
    )


# Holidays in the calendar above on which workplaces stay open.
_OPEN_ON = {
    "Columbus Day",
    "Veterans Day",
    "Cesar Chavez Day",
    "Susan B. Anthony Day",
    "Good Friday",
    "Election Day",
    "Groundhog Day",
    "Valentine's Day",
    "Saint Patrick's Day",
    "Easter Sunday",
    "Mother's Day",
    "Father's Day",
    "Halloween",
}
_OBSERVED = " (observed)"


def is_holiday(day: date, *, subdiv: str | None = "CA") -> bool:
    """True on the days a US workplace closes (see the module docstring)."""
    names = _holiday_calendar(subdiv).get_list(day)
    return any(name.removesuffix(_OBSERVED) not in _OPEN_ON for name in names)


def holiday_flags(local_days: pd.Series) -> np.ndarray:
    """``is_holiday`` of each local date of ``local_days``, as 0.0 / 1.0."""
    unique = pd.unique(local_days)
    flags = {d: is_holiday(d) for d in unique}
    return local_days.map(flags).to_numpy(dtype=float)


def year_end(local: pd.DatetimeIndex) -> np.ndarray:
    """Dec 24 to Jan 1: the week campuses and offices largely close."""
    month, day = local.month, local.day
    return (((month == 12) & (day >= 24)) | ((month == 1) & (day <= 1))).astype(float)


def calendar_features(hours: pd.DatetimeIndex, *, time_zone: str) -> pd.DataFrame:
    """Local hour, weekday, weekend, holiday, year-end week, holiday a week ago."""
    local = hours.tz_convert(time_zone)
    days = pd.Series(local.date, index=hours)
    frame = pd.DataFrame(index=hours)
    frame["hour_local"] = local.hour.astype(float)
    frame["weekday"] = local.day_of_week.astype(float)
    frame["is_weekend"] = (local.day_of_week >= 5).astype(float)
    frame["is_holiday"] = holiday_flags(days)
    frame["year_end"] = year_end(local)
    week_ago = pd.Series((local - pd.Timedelta(days=7)).date, index=hours, dtype=object)
    frame["holiday_week_ago"] = holiday_flags(week_ago)
    return frame


def local_lag(
    values: pd.Series, *, days: int, time_zone: str, min_age_h: int
) -> pd.Series:
    """``values`` at the same local clock hour ``days`` days earlier.

    ``values`` is hourly on a UTC index. Across a daylight-saving change the
    same local hour a week back is 167 or 169 UTC hours away, not 168: a UTC lag
    then puts the morning arrival peak an hour off for as many weeks as it
    reaches back. Values less than ``min_age_h`` hours old are NaN (at "2 days"
    across the spring change the same local hour is only 47 hours back). The
    hour that does not exist in spring reads the hour after; the hour that
    occurs twice in autumn reads the second one.
    """
    index = pd.DatetimeIndex(values.index)
    naive = index.tz_convert(time_zone).tz_localize(None) - pd.Timedelta(days=days)
    earlier = naive.tz_localize(
        time_zone,
        ambiguous=np.zeros(len(naive), dtype=bool),
        nonexistent="shift_forward",
    ).tz_convert("UTC")
    out = values.reindex(earlier).to_numpy(dtype=float)
    age_h = np.asarray((index - earlier) / pd.Timedelta(hours=1))
    return pd.Series(np.where(age_h >= min_age_h, out, np.nan), index=index)
