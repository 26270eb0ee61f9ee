"""Feature tables for the two forecasting tasks.

Site demand (hourly): every feature of a target hour uses only data at least
``HORIZON_H`` hours old, so one model serves every hour of the next two days
and the backtest is a true two-day-ahead forecast. Weekly patterns are read at
the same *local* clock hour (``calendar.local_lag``), so a daylight-saving
change does not shift them by an hour. The model predicts a correction to
``day_profile``: the usual value of this local hour on this kind of day (the
median of the same weekday over 12 weeks; the last Sundays for a weekday
holiday), scaled by how the latest known week compared with that usual. It
keeps the model close to the site's recent weeks when its few months of
training rows say little.

Session outcome (at plug-in): time of day, weekday, holiday, the token's (or
vehicle's) earlier sessions, the charge point's and the site's recent sessions,
and how busy the site is at that moment.
"""

import numpy as np
import pandas as pd

from forecasting.ml.calendar import calendar_features, holiday_flags, local_lag
from forecasting.ml.frames import duration_hours

HORIZON_H = 48
WEEK_H = 168
# The farthest back an hourly feature reads: the day profile's 12 weeks, scaled
# by a week whose own profile reaches 84 days further back (93 days); the rest
# read less. Prediction hands ``hourly_features`` only this much history before
# its first target hour: the features of those hours are the same as with the
# whole series, in a fifth of the time on two years of data.
FEATURE_HISTORY_DAYS = 100

HOURLY_FEATURES = [
    "hour_local",
    "weekday",
    "is_weekend",
    "is_holiday",
    "year_end",
    "holiday_week_ago",
    "lag_48",
    "lag_3d",
    "lag_7d",
    "lag_14d",
    "mean_24h",
    "mean_168h",
    "trend_168h_over_672h",
    "usual_profile",
    "day_profile",
    "week_median_12w",
    "week_mean_4w",
    "week_max_4w",
    "week_mean_4w_clean",
    "fortnight_median",
    "fortnight_odd_median",
    "sunday_median_8w",
    "day_mean_7d",
    "workday_mean_2w",
    "other_lag_7d",
    "other_week_mean_4w",
    "arrivals_week_mean_4w",
    "arrivals_168h",
]
# The hourly model predicts ``target - day_profile`` (missing profile: 0); the
# ONNX graph adds the profile back, so every consumer gets kWh or vehicles.
HOURLY_BASE_FEATURE = "day_profile"
# Columns the baselines read, computed on UTC hours exactly as they always
# were: seasonal naive (``lag_168``), its band, and the 4-week same-hour mean.
BASELINE_COLUMNS = ["lag_168", "lag_336", "same_hour_mean_4w", "same_hour_max_4w"]
# Features of the models trained before local-time lags (v1 feature set). They
# stay in the table so such a model keeps serving, and can be scored on a new
# holdout, until a retrain replaces it.
LEGACY_COLUMNS = [
    "lag_72",
    "same_hour_mean_7d",
    "workday_same_hour_mean",
    "other_lag_168",
    "other_same_hour_mean_4w",
]


def _mean_of(frames: list[pd.Series]) -> pd.Series:
    return pd.concat(frames, axis=1).mean(axis=1)


def _median_of(frames: list[pd.Series]) -> pd.Series:
    return pd.concat(frames, axis=1).median(axis=1)


def _sunday_median(
    values: pd.Series, *, weekday: np.ndarray, time_zone: str, weeks: int
) -> pd.Series:
    """Same local hour over the last ``weeks`` Sundays at least two days back."""
    days_back = (weekday + 1) % 7
    days_back = np.where(days_back < 2, days_back + 7, days_back)
    out = np.full(len(values), np.nan)
    for first in np.unique(days_back):
        rows = days_back == first
        lags = [
            local_lag(
                values,
                days=int(first) + 7 * k,
                time_zone=time_zone,
                min_age_h=HORIZON_H,
            )
            for k in range(weeks)
        ]
        out[rows] = _median_of(lags).to_numpy()[rows]
    return pd.Series(out, index=values.index)


def hourly_features(
    series: pd.DataFrame, *, target: str, time_zone: str, until: pd.Timestamp
) -> pd.DataFrame:
    """Features of every hour of ``series`` and of the hours up to ``until``.

    ``series`` is the output of ``site_hourly_series``; ``target`` is
    ``energy_kwh`` or ``plugged_in``. Hours after the series end get features
    too (their lags reach back into the series), with a NaN target. Besides
    ``HOURLY_FEATURES`` the table holds ``BASELINE_COLUMNS``,
    ``LEGACY_COLUMNS`` and ``target``.
    """
    index = pd.date_range(series.index[0], until, freq="h", inclusive="left")
    full = series.reindex(index)
    known = full["missing"].eq(False)
    values = full[target].where(known)
    other_name = "plugged_in" if target == "energy_kwh" else "energy_kwh"
    other = full[other_name].where(known)
    arrivals = full["arrivals"].where(known)
    cal = calendar_features(index, time_zone=time_zone)
    weekday = cal["weekday"].to_numpy().astype(int)
    weekday_holiday = (cal["is_holiday"] > 0) & (cal["is_weekend"] == 0)
    workday = (cal["is_weekend"] + cal["is_holiday"]).eq(0)

    def lag(data: pd.Series, days: int) -> pd.Series:
        return local_lag(data, days=days, time_zone=time_zone, min_age_h=HORIZON_H)

    frame = cal.copy()
    frame["lag_48"] = values.shift(HORIZON_H)
    for days in (3, 7, 14):
        frame[f"lag_{days}d"] = lag(values, days)
    shifted = values.shift(HORIZON_H)
    frame["mean_24h"] = shifted.rolling(24, min_periods=12).mean()
    frame["mean_168h"] = shifted.rolling(WEEK_H, min_periods=84).mean()
    frame["trend_168h_over_672h"] = frame["mean_168h"] / shifted.rolling(
        4 * WEEK_H, min_periods=2 * WEEK_H
    ).mean().where(lambda m: m > 0)

    # Profiles: the same local hour on earlier days of the same kind. A weekday
    # holiday is no example of its weekday ("clean" drops it) and is itself
    # expected to look like a Sunday.
    clean = values.where(~weekday_holiday)
    frame["week_median_12w"] = _median_of([lag(clean, 7 * k) for k in range(1, 13)])
    weekly = [lag(values, 7 * k) for k in range(1, 5)]
    frame["week_mean_4w"] = _mean_of(weekly)
    frame["week_max_4w"] = pd.concat(weekly, axis=1).max(axis=1)
    frame["week_mean_4w_clean"] = _mean_of([lag(clean, 7 * k) for k in range(1, 5)])
    # Two-week rhythms (JPL's 9/80 schedule: every other Friday off).
    frame["fortnight_median"] = _median_of([lag(clean, 14 * k) for k in range(1, 5)])
    frame["fortnight_odd_median"] = _median_of(
        [lag(clean, 14 * k - 7) for k in range(1, 5)]
    )
    frame["sunday_median_8w"] = _sunday_median(
        values, weekday=weekday, time_zone=time_zone, weeks=8
    )
    usual = frame["week_median_12w"].where(~weekday_holiday, frame["sunday_median_8w"])
    frame["usual_profile"] = usual
    # The usual profile lags behind a site whose demand grows or shrinks (JPL in
    # 2021, back from remote work): scale it by how the last week that is known
    # compared with it, hour for hour.
    level = shifted.rolling(WEEK_H, min_periods=84).sum() / usual.shift(
        HORIZON_H
    ).rolling(WEEK_H, min_periods=84).sum().where(lambda total: total > 0)
    frame["day_profile"] = usual * level.clip(0.5, 2.0).fillna(1.0)
    frame["day_mean_7d"] = _mean_of(
        [values.shift(HORIZON_H)] + [lag(values, d) for d in range(3, 9)]
    )
    frame["workday_mean_2w"] = _mean_of(
        [values.where(workday).shift(HORIZON_H)]
        + [lag(values.where(workday), d) for d in range(3, 16)]
    )
    frame["other_lag_7d"] = lag(other, 7)
    frame["other_week_mean_4w"] = _mean_of([lag(other, 7 * k) for k in range(1, 5)])
    frame["arrivals_week_mean_4w"] = _mean_of(
        [lag(arrivals, 7 * k) for k in range(1, 5)]
    )
    frame["arrivals_168h"] = (
        arrivals.shift(HORIZON_H).rolling(WEEK_H, min_periods=84).sum()
    )

    _utc_columns(frame, values=values, other=other, workday=workday)
    frame["target"] = values
    return frame[[*HOURLY_FEATURES, *BASELINE_COLUMNS, *LEGACY_COLUMNS, "target"]]


def _utc_columns(
    frame: pd.DataFrame, *, values: pd.Series, other: pd.Series, workday: pd.Series
) -> None:
    """Baseline and legacy columns: lags in whole UTC hours, as before."""
    for lag in (72, 168, 336):
        frame[f"lag_{lag}"] = values.shift(lag)
    weekly = pd.concat([values.shift(WEEK_H * k) for k in (1, 2, 3, 4)], axis=1)
    frame["same_hour_mean_4w"] = weekly.mean(axis=1)
    frame["same_hour_max_4w"] = weekly.max(axis=1)
    frame["same_hour_mean_7d"] = _mean_of([values.shift(24 * k) for k in range(2, 9)])
    frame["workday_same_hour_mean"] = _mean_of(
        [values.where(workday).shift(24 * k) for k in range(2, 16)]
    )
    frame["other_lag_168"] = other.shift(WEEK_H)
    frame["other_same_hour_mean_4w"] = _mean_of(
        [other.shift(WEEK_H * k) for k in (1, 2, 3, 4)]
    )


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
    "token_energy_ewm",
    "token_duration_ewm",
    "token_energy_q75_20",
    "token_duration_q25_20",
    "token_energy_median_5",
    "token_duration_median_5",
    "token_duration_median_3",
    "site_energy_median_50",
    "site_duration_median_50",
    "site_plugged_in_at_arrival",
    "site_arrivals_last_2h",
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


def _ewm_history(values: pd.Series, groups: pd.Series, halflife: float) -> pd.Series:
    """Exponentially weighted mean of the earlier rows of each group."""
    shifted = values.groupby(groups, sort=False).shift(1)
    rolled = shifted.groupby(groups, sort=False).ewm(halflife=halflife).mean()
    return rolled.reset_index(level=0, drop=True).reindex(values.index)


_EPOCH = pd.Timestamp("1970-01-01", tz="UTC")


def _epoch_hours(times: pd.Series) -> np.ndarray:
    """Hours since 1970 of aware timestamps; a missing time (still open) is +inf."""
    hours = (times - _EPOCH).dt.total_seconds().to_numpy(dtype=float) / 3600
    return np.where(np.isnan(hours), np.inf, hours)


def _finished_before(
    values: pd.Series,
    started: pd.Series,
    stopped: pd.Series,
    *,
    window: int,
    how: str,
) -> pd.Series:
    """Statistic of the last ``window`` sessions that ended before each plug-in.

    Sessions still plugged in at a row's plug-in are left out: their energy
    and duration are not known yet at that moment.
    """
    start_h, stop_h = _epoch_hours(started), _epoch_hours(stopped)
    order = np.argsort(stop_h, kind="stable")
    by_stop = pd.Series(values.to_numpy(dtype=float)[order])
    rolled = getattr(by_stop.rolling(window, min_periods=1), how)().to_numpy()
    ended = np.searchsorted(stop_h[order], start_h, side="right")
    out = np.where(ended > 0, rolled[np.maximum(ended - 1, 0)], np.nan)
    return pd.Series(out, index=values.index)


def _site_now(started: pd.Series, stopped: pd.Series) -> pd.DataFrame:
    """Vehicles plugged in at each plug-in, and arrivals in the two hours before."""
    start_h, stop_h = _epoch_hours(started), _epoch_hours(stopped)
    starts, stops = np.sort(start_h), np.sort(stop_h)
    started_before = np.searchsorted(starts, start_h, side="left")
    stopped_before = np.searchsorted(stops, start_h, side="right")
    recent = started_before - np.searchsorted(starts, start_h - 2, side="left")
    return pd.DataFrame(
        {
            "site_plugged_in_at_arrival": started_before - stopped_before,
            "site_arrivals_last_2h": recent,
        },
        index=started.index,
        dtype=float,
    )


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
    # Recent habits weigh more: Caltech stays fell from a median of about 6 h
    # (early 2020) to about 1.3 h (2021).
    out["token_energy_ewm"] = _ewm_history(energy, token, halflife=3)
    out["token_duration_ewm"] = _ewm_history(duration, token, halflife=3)
    out["token_energy_median_5"] = _history_stat(energy, token, 5, "median")
    out["token_duration_median_5"] = _history_stat(duration, token, 5, "median")
    out["token_duration_median_3"] = _history_stat(duration, token, 3, "median")
    out["token_energy_q75_20"] = _quantile_history(energy, token, 20, 0.75)
    out["token_duration_q25_20"] = _quantile_history(duration, token, 20, 0.25)
    return out


def _quantile_history(
    values: pd.Series, groups: pd.Series, window: int, q: float
) -> pd.Series:
    shifted = values.groupby(groups, sort=False).shift(1)
    rolled = shifted.groupby(groups, sort=False).rolling(window, min_periods=1)
    result = rolled.quantile(q)
    return result.reset_index(level=0, drop=True).reindex(values.index)


def session_features(
    sessions: pd.DataFrame, *, time_zone: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Features at plug-in of every session, and its targets.

    ``sessions`` must be sorted by ``started_at``. Rows that are still open (no
    departure yet) get features from all earlier finished history and NaN
    targets. History statistics of a row use the token's and station's earlier
    sessions, and the site's sessions that had ended before its plug-in.
    """
    frame = sessions.reset_index(drop=True)
    if frame.empty:
        raise ValueError("no sessions to build features from")
    local = pd.DatetimeIndex(frame["started_at"]).tz_convert(time_zone)
    energy = frame["energy_kwh"].astype(float)
    duration = pd.Series(duration_hours(frame), index=frame.index)
    arrival_hour = pd.Series(local.hour + local.minute / 60, index=frame.index)

    out = pd.DataFrame(index=frame.index)
    out["hour_local"] = arrival_hour
    out["weekday"] = local.day_of_week.astype(float)
    out["is_weekend"] = (local.day_of_week >= 5).astype(float)
    out["is_holiday"] = holiday_flags(pd.Series(local.date, index=frame.index))

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
    sites = frame.groupby(frame["site"].fillna(""), sort=False).groups.values()
    started, stopped = frame["started_at"], frame["stopped_at"]
    for column, values, window, how in (
        ("site_energy_mean_200", energy, 200, "mean"),
        ("site_duration_mean_200", duration, 200, "mean"),
        ("site_energy_median_50", energy, 50, "median"),
        ("site_duration_median_50", duration, 50, "median"),
    ):
        out[column] = pd.concat(
            [
                _finished_before(
                    values[rows], started[rows], stopped[rows], window=window, how=how
                )
                for rows in sites
            ]
        )
    out = out.join(pd.concat([_site_now(started[r], stopped[r]) for r in sites]))

    targets = pd.DataFrame({"energy_kwh": energy, "duration_h": duration})
    return out[SESSION_FEATURES].astype(float), targets
