"""Session history of a site from the database, as the ML core's session frame."""

import pandas as pd
from django.db.models import Max
from django.utils import timezone

from forecasting.ml.frames import sessions_frame_normalise
from forecasting.ml.series import site_hourly_series
from sessions.models import ChargingSession
from stations.models import Site


def site_sessions_frame(*, site: Site, since=None) -> pd.DataFrame:
    """All sessions of ``site`` (optionally plugged in since ``since``).

    The token is the driver's id token where known, else the vehicle: both name
    the same car for a fleet, and imported users become id tokens.
    """
    queryset = ChargingSession.objects.filter(charge_point__site=site)
    if since is not None:
        queryset = queryset.filter(started_at__gte=since)
    rows = queryset.values_list(
        "pk",
        "charge_point__identity",
        "id_token_id",
        "vehicle_id",
        "started_at",
        "stopped_at",
        "done_charging_at",
        "energy_wh",
        "requested_energy_wh",
        "requested_departure_at",
    )
    records = []
    for (
        pk,
        station,
        token_id,
        vehicle_id,
        start,
        stop,
        done,
        wh,
        req_wh,
        req_dep,
    ) in rows.iterator(chunk_size=5000):
        token = (
            f"t{token_id}" if token_id else (f"v{vehicle_id}" if vehicle_id else None)
        )
        records.append(
            {
                "session_id": str(pk),
                "site": site.code,
                "station": station,
                "token": token,
                "started_at": start,
                "stopped_at": stop,
                "done_charging_at": done,
                "energy_kwh": None if wh is None else wh / 1000,
                "requested_energy_kwh": None if req_wh is None else req_wh / 1000,
                "requested_departure_at": req_dep,
            }
        )
    return sessions_frame_normalise(pd.DataFrame.from_records(records))


def site_latest_data_at(*, site: Site):
    """When the site's data ends: now if a session is open, else the last event."""
    sessions = ChargingSession.objects.filter(charge_point__site=site)
    if sessions.filter(stopped_at__isnull=True).exists():
        return timezone.now()
    latest = sessions.aggregate(stop=Max("stopped_at"), start=Max("started_at"))
    candidates = [t for t in (latest["stop"], latest["start"]) if t is not None]
    return max(candidates) if candidates else None


def site_series_end(*, site: Site) -> pd.Timestamp | None:
    """Exclusive end of the site's hourly series: the hour after its latest data."""
    latest = site_latest_data_at(site=site)
    if latest is None:
        return None
    return pd.Timestamp(latest).tz_convert("UTC").floor("h") + pd.Timedelta(hours=1)


def site_series(*, site: Site, frame: pd.DataFrame | None = None):
    """Hourly series of the site up to its latest data (open sessions run to now)."""
    if frame is None:
        frame = site_sessions_frame(site=site)
    end = site_series_end(site=site)
    if end is None or frame.empty:
        return None, end
    frame = frame.copy()
    frame["stopped_at"] = frame["stopped_at"].fillna(end)
    return site_hourly_series(frame, end=end), end
