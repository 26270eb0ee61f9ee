"""Reads of the forecasting app for pages, the API and the dashboard."""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
from django.db.models import Max, Q
from django.utils import timezone

from forecasting.ml.features import session_features
from forecasting.ml.frames import sessions_frame_normalise
from forecasting.models import (
    BASELINE_LABEL,
    Forecast,
    ForecastScore,
    ForecastTask,
    ModelStatus,
    ModelVersion,
)
from forecasting.services.evaluation import ROLLING_DAYS, forecast_alert_subject
from forecasting.services.history import site_sessions_frame
from forecasting.services.predicting import FORECAST_HOURS, site_forecast_compute
from forecasting.serving import model_predict
from sessions.models import ChargingSession, IdToken, Vehicle
from stations.models import Alert, AlertKind, Site


@dataclass
class ForecastRow:
    hour_start: datetime
    energy_kwh: float | None
    p10: float | None
    p90: float | None
    plugged_in: float | None = None
    plugged_in_p10: float | None = None
    plugged_in_p90: float | None = None


@dataclass
class SiteForecast:
    """The next hours of a site; ``is_baseline`` when no model made the energy."""

    site: Site
    origin: datetime | None
    is_baseline: bool
    model_version: ModelVersion | None
    label: str
    rows: list[ForecastRow] = field(default_factory=list)
    plugged_in_label: str = ""
    stored: bool = False


def _stored_latest(site: Site, task: str, hours: int):
    latest = Forecast.objects.filter(site=site, task=task, is_backtest=False).aggregate(
        o=Max("origin")
    )["o"]
    if latest is None:
        return None, []
    rows = list(
        Forecast.objects.filter(site=site, task=task, is_backtest=False, origin=latest)
        .select_related("model_version")
        # The ONNX bytes (about 1 MB) are not needed to show a forecast.
        .defer("model_version__artifact")
        .order_by("target_hour")[:hours]
    )
    return latest, rows


def site_demand_forecast(*, site: Site, hours: int = FORECAST_HOURS) -> SiteForecast:
    """Energy and vehicles plugged in for the ``hours`` after the latest data.

    Served from the rows the last batch prediction wrote for the site's latest
    data; when none exist yet (or the data moved on), computed now with the
    active model or, without one, the seasonal-naive baseline.
    """
    from forecasting.services.history import site_series_end

    end = site_series_end(site=site)
    origin, energy = _stored_latest(site, ForecastTask.SITE_ENERGY, hours)
    _, plugged = _stored_latest(site, ForecastTask.SITE_PLUGGED_IN, hours)
    if energy and end is not None and origin == end.to_pydatetime():
        version = energy[0].model_version
        by_hour = {f.target_hour: f for f in plugged}
        rows = []
        for f in energy:
            p = by_hour.get(f.target_hour)
            rows.append(
                ForecastRow(
                    f.target_hour,
                    f.value,
                    f.p10,
                    f.p90,
                    p.value if p else None,
                    p.p10 if p else None,
                    p.p90 if p else None,
                )
            )
        return SiteForecast(
            site=site,
            origin=origin,
            is_baseline=version is None,
            model_version=version,
            label=energy[0].label,
            rows=rows,
            plugged_in_label=plugged[0].label if plugged else "",
            stored=True,
        )

    computed = site_forecast_compute(site=site, hours=hours)
    if not computed:
        return SiteForecast(site, None, True, None, BASELINE_LABEL)
    energy_fc = computed[ForecastTask.SITE_ENERGY]
    plugged_fc = computed[ForecastTask.SITE_PLUGGED_IN]
    rows = []
    for hour, row in energy_fc.frame.iterrows():
        p = plugged_fc.frame.loc[hour] if hour in plugged_fc.frame.index else None
        rows.append(
            ForecastRow(
                hour.to_pydatetime(),
                float(row.value),
                float(row.p10),
                float(row.p90),
                None if p is None else float(p.value),
                None if p is None else float(p.p10),
                None if p is None else float(p.p90),
            )
        )
    return SiteForecast(
        site=site,
        origin=energy_fc.origin.to_pydatetime(),
        is_baseline=energy_fc.is_baseline,
        model_version=energy_fc.model_version,
        label=energy_fc.label,
        rows=rows,
        plugged_in_label=plugged_fc.label,
    )


@dataclass
class TomorrowEnergy:
    site: Site
    day: date | None
    energy_kwh: float | None
    hours: int
    is_baseline: bool
    label: str
    origin: datetime | None


def tomorrow_energy(*, site: Site) -> TomorrowEnergy:
    """Expected energy (sum of hourly p50) of the site's next local day.

    "Tomorrow" is the local calendar day after the site's latest data.
    """
    forecast = site_demand_forecast(site=site, hours=FORECAST_HOURS)
    if forecast.origin is None or not forecast.rows:
        return TomorrowEnergy(site, None, None, 0, True, forecast.label, None)
    tz = site.tz
    day = (forecast.origin.astimezone(tz) + timedelta(days=1)).date()
    values = [
        r.energy_kwh
        for r in forecast.rows
        if r.energy_kwh is not None and r.hour_start.astimezone(tz).date() == day
    ]
    return TomorrowEnergy(
        site=site,
        day=day,
        energy_kwh=float(sum(values)) if values else None,
        hours=len(values),
        is_baseline=forecast.is_baseline,
        label=forecast.label,
        origin=forecast.origin,
    )


def tomorrow_energy_by_site() -> list[TomorrowEnergy]:
    """Tomorrow's expected energy of every site, for the dashboard.

    Read from the rows the last batch prediction stored, in three queries
    whatever the number of sites: the dashboard must not train or run models.
    A site without stored forecasts shows as not forecast yet.
    """
    sites = list(Site.objects.order_by("name"))
    stored = Forecast.objects.filter(task=ForecastTask.SITE_ENERGY, is_backtest=False)
    origins = dict(
        stored.values_list("site_id")
        .annotate(o=Max("origin"))
        .values_list("site_id", "o")
    )
    latest_rows = Q(pk__in=[])
    for site_id, origin in origins.items():
        latest_rows |= Q(site_id=site_id, origin=origin)
    by_site: dict[int, list[Forecast]] = {}
    for f in (
        stored.filter(latest_rows)
        .select_related("model_version")
        .defer("model_version__artifact")
        .order_by("target_hour")
    ):
        by_site.setdefault(f.site_id, []).append(f)

    result = []
    for site in sites:
        rows = by_site.get(site.pk, [])
        if not rows:
            result.append(
                TomorrowEnergy(site, None, None, 0, True, BASELINE_LABEL, None)
            )
            continue
        origin = rows[0].origin
        day = (origin.astimezone(site.tz) + timedelta(days=1)).date()
        values = [
            f.value
            for f in rows
            if f.value is not None and f.target_hour.astimezone(site.tz).date() == day
        ]
        result.append(
            TomorrowEnergy(
                site=site,
                day=day,
                energy_kwh=float(sum(values)) if values else None,
                hours=len(values),
                is_baseline=rows[0].model_version is None,
                label=rows[0].label,
                origin=origin,
            )
        )
    return result


@dataclass
class HistoryPoint:
    hour_start: datetime
    forecast: float
    p10: float | None
    p90: float | None
    actual: float | None
    baseline: float | None
    label: str


def forecast_history(
    *, site: Site, task: str = ForecastTask.SITE_ENERGY, days: int = 14
) -> list[HistoryPoint]:
    """Past forecasts of the site's last ``days`` days with what happened.

    Per hour, the forecast made closest to 48 hours before it (live or backtest)
    is shown, so every point is a like-for-like two-day-ahead forecast.
    """
    latest = Forecast.objects.filter(
        site=site, task=task, actual__isnull=False
    ).aggregate(h=Max("target_hour"))["h"]
    if latest is None:
        return []
    rows = Forecast.objects.filter(
        site=site,
        task=task,
        actual__isnull=False,
        target_hour__gt=latest - timedelta(days=days),
    ).order_by("target_hour", "-origin")
    chosen: dict[datetime, Forecast] = {}
    for f in rows:
        lead = f.target_hour - f.origin
        best = chosen.get(f.target_hour)
        if best is None or abs(lead - timedelta(hours=48)) < abs(
            (best.target_hour - best.origin) - timedelta(hours=48)
        ):
            chosen[f.target_hour] = f
    return [
        HistoryPoint(h, f.value, f.p10, f.p90, f.actual, f.baseline_value, f.label)
        for h, f in sorted(chosen.items())
    ]


@dataclass
class VersionScore:
    version: ModelVersion
    rolling_mae: float | None
    rolling_baseline_mae: float | None
    rolling_hours: int


def active_versions(*, site: Site) -> list[VersionScore]:
    """Active versions of the site with their rolling live error and baseline's."""
    result = []
    versions = ModelVersion.objects.filter(site=site, status=ModelStatus.ACTIVE)
    for version in versions.defer("artifact"):
        result.append(version_rolling_score(model_version=version))
    return result


def version_rolling_score(*, model_version: ModelVersion) -> VersionScore:
    scores = list(
        ForecastScore.objects.filter(model_version=model_version).order_by("-day")[
            :ROLLING_DAYS
        ]
    )
    hours = sum(s.hours for s in scores)
    if not hours:
        return VersionScore(model_version, None, None, 0)
    mae = sum(s.mae * s.hours for s in scores) / hours
    with_base = [s for s in scores if s.baseline_mae is not None]
    base_hours = sum(s.hours for s in with_base)
    base = (
        sum(s.baseline_mae * s.hours for s in with_base) / base_hours
        if base_hours
        else None
    )
    return VersionScore(model_version, mae, base, hours)


def forecast_worse_alert(*, site: Site, task: str = ForecastTask.SITE_ENERGY):
    """The open worse-than-baseline alert of the site's task, if any."""
    return Alert.objects.filter(
        kind=AlertKind.FORECAST_WORSE_THAN_BASELINE,
        subject=forecast_alert_subject(site=site, task=task),
        resolved_at__isnull=True,
    ).first()


def seconds_since_last_retrain() -> float | None:
    """Seconds since the newest model version was trained (None: never)."""
    latest = ModelVersion.objects.aggregate(t=Max("trained_at"))["t"]
    if latest is None:
        return None
    return (timezone.now() - latest).total_seconds()


@dataclass
class NextDayEnergy:
    """A token's or vehicle's expected charging energy for its next day."""

    energy_kwh: float | None
    charge_probability: float | None
    session_energy_kwh: float | None
    sessions_seen: int
    is_baseline: bool
    label: str
    day: date | None = None


def next_day_energy(
    *, id_token: IdToken | None = None, vehicle: Vehicle | None = None
) -> NextDayEnergy:
    """Expected energy the token (or vehicle) will take on its next day.

    = share of the last 8 weeks' same weekdays it charged on x the energy the
    active session-energy model expects for a session at its usual site and
    arrival hour (without an active model: the median of its past sessions,
    labelled as that baseline). The next day follows its latest session.
    """
    sessions = ChargingSession.objects.filter(stopped_at__isnull=False)
    if id_token is not None:
        sessions = sessions.filter(id_token=id_token)
    elif vehicle is not None:
        sessions = sessions.filter(vehicle=vehicle)
    else:
        raise ValueError("id_token or vehicle is required")
    latest = (
        sessions.select_related("charge_point__site").order_by("-started_at").first()
    )
    if latest is None:
        return NextDayEnergy(None, None, None, 0, True, "no history")

    site = latest.charge_point.site
    tz = site.tz
    next_day = (latest.started_at.astimezone(tz) + timedelta(days=1)).date()
    window_start = latest.started_at - timedelta(weeks=8)
    recent = list(
        sessions.filter(started_at__gte=window_start).values_list(
            "started_at", "energy_wh"
        )
    )
    days_charged = {s.astimezone(tz).date() for s, _ in recent}
    same_weekday = [next_day - timedelta(weeks=k) for k in range(1, 9)]
    probability = sum(d in days_charged for d in same_weekday) / len(same_weekday)
    energies = [wh / 1000 for _, wh in recent if wh is not None]

    active = ModelVersion.objects.filter(
        site=site, task=ForecastTask.SESSION_ENERGY, status=ModelStatus.ACTIVE
    ).first()
    if active is None:
        per_session = float(np.median(energies)) if energies else None
        label = "baseline: median of its sessions (last 8 weeks)"
    else:
        per_session = _session_energy_predict(
            site=site, latest=latest, day=next_day, model_version=active
        )
        label = active.label
    expected = None if per_session is None else probability * per_session
    return NextDayEnergy(
        expected, probability, per_session, len(recent), active is None, label, next_day
    )


def _session_energy_predict(*, site, latest, day, model_version) -> float:
    """Model's energy for a session plugged in on ``day`` at the token's usual hour."""
    frame = site_sessions_frame(site=site, since=latest.started_at - timedelta(days=90))
    token = (
        f"t{latest.id_token_id}"
        if latest.id_token_id
        else (f"v{latest.vehicle_id}" if latest.vehicle_id else None)
    )
    mine = frame[frame["token"] == token]
    tz = site.tz
    hours = [
        t.tz_convert(tz).hour + t.tz_convert(tz).minute / 60 for t in mine["started_at"]
    ]
    usual_hour = float(np.median(hours)) if hours else 8.0
    plug_in = pd.Timestamp(
        datetime.combine(day, datetime.min.time()), tz=tz
    ) + pd.Timedelta(hours=usual_hour)
    new_row = {
        "session_id": "next",
        "site": site.code,
        "station": latest.charge_point.identity,
        "token": token,
        "started_at": plug_in.tz_convert("UTC"),
        "stopped_at": pd.NaT,
        "done_charging_at": pd.NaT,
        "energy_kwh": np.nan,
    }
    frame = sessions_frame_normalise(
        pd.concat([frame, pd.DataFrame([new_row])], ignore_index=True)
    )
    table, _ = session_features(frame, time_zone=site.time_zone)
    row = table[frame["session_id"] == "next"][model_version.features]
    return float(
        model_predict(model_version=model_version, X=row.to_numpy(np.float32))[0, 1]
    )
