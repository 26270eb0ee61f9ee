"""Fleet insights: how each fleet and each vehicle charges, and what it will
need tomorrow.

Definitions (the API docs and the page repeat them):

- A session belongs to the range when it started on a day of the range, in its
  site's local time. Sessions still plugged in (no stop yet) are left out and
  counted in ``active_sessions_excluded``.
- Duration: ``stopped_at - started_at`` (plugged-in time).
- Charging ended at ``done_charging_at`` when the charger or data set says so;
  otherwise at the first meter sample where the energy register reached its
  final value; otherwise it is unknown. Idle time (plugged in, not charging) is
  ``stopped_at`` minus that end, over the sessions where the end is known.
- Peak-hour energy: each session's energy is spread evenly over its charging
  interval (start to end of charging, or to the stop when the end is unknown),
  and the part inside the peak window of each local day (settings
  FLEET_PEAK_START_HOUR..FLEET_PEAK_END_HOUR, site local time) counts as peak.
- Next day: the local day after the range. When the forecasting app's site
  forecast (forecasting.selectors.tomorrow_energy: the active model, or its
  own labelled baseline) covers that day, a vehicle's demand is the forecast of
  its home site (where it took most energy in the four weeks before) times the
  vehicle's share of that site's energy in those four weeks: method
  "site_forecast_share". Otherwise the prediction is the labelled baseline
  "same weekday, last four weeks": the mean energy of that weekday over the
  four weeks before, counting only weeks since the vehicle's first session.
  No history gives no number (None), never a made-up one.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.cache import cache
from django.db.models import (
    Case,
    DateTimeField,
    F,
    Min,
    OuterRef,
    Q,
    Subquery,
    When,
)

from forecasting.selectors import tomorrow_energy
from sessions.models import ChargingSession, Fleet, MeterSample, Vehicle
from stations.models import Site

ENERGY_REGISTER = "Energy.Active.Import.Register"
BASELINE_WEEKS = 4
BASELINE_METHOD = "baseline_same_weekday_4w"
SITE_SHARE_METHOD = "site_forecast_share"
# A year and a bit: the selector reads every session of the range into memory.
MAX_RANGE_DAYS = 400


@dataclass
class NextDayDemand:
    day: date
    energy_kwh: float | None
    is_baseline: bool
    method: str
    model_version: str | None = None
    basis_days: int = 0
    note: str = ""
    label: str = "baseline: same weekday, last four weeks"


@dataclass
class ChargingFigures:
    sessions: int = 0
    energy_kwh: float = 0.0
    sessions_without_energy: int = 0
    avg_duration_h: float | None = None
    avg_idle_h: float | None = None
    idle_known_sessions: int = 0
    peak_energy_kwh: float = 0.0
    peak_share: float | None = None


@dataclass
class VehicleInsight:
    vehicle_id: int
    name: str
    figures: ChargingFigures
    next_day: NextDayDemand


@dataclass
class FleetInsight:
    fleet_id: int | None
    name: str
    figures: ChargingFigures
    next_day: NextDayDemand
    vehicles: list[VehicleInsight] = field(default_factory=list)


@dataclass
class FleetInsights:
    date_from: date
    date_to: date
    next_day: date
    peak_start_hour: int
    peak_end_hour: int
    active_sessions_excluded: int
    fleets: list[FleetInsight]


@dataclass
class _Session:
    vehicle_id: int | None
    site_id: int
    started_at: datetime
    stopped_at: datetime | None
    charge_end_at: datetime | None
    energy_wh: int | None
    tz: ZoneInfo

    @property
    def local_day(self) -> date:
        return self.started_at.astimezone(self.tz).date()


def _utc_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """A UTC window that holds every local day first..last in any time zone."""
    start = datetime.combine(first, time.min, tzinfo=UTC) - timedelta(days=1)
    end = datetime.combine(last, time.min, tzinfo=UTC) + timedelta(days=2)
    return start, end


def _load_sessions(
    *,
    vehicle_ids: list[int] | None,
    first: date,
    last: date,
    with_end: bool,
    site_ids: list[int] | None = None,
) -> list[_Session]:
    start, end = _utc_bounds(first, last)
    queryset = ChargingSession.objects.filter(started_at__gte=start, started_at__lt=end)
    if site_ids is not None:
        queryset = queryset.filter(charge_point__site_id__in=site_ids)
    else:
        queryset = queryset.filter(vehicle__isnull=False)
    if vehicle_ids is not None:
        queryset = queryset.filter(vehicle_id__in=vehicle_ids)
    if with_end:
        # Where the charger did not say when charging ended, the first sample at
        # the final register value does (CASE: the subquery runs only then).
        reached_final = (
            MeterSample.objects.filter(
                session=OuterRef("pk"),
                measurand=ENERGY_REGISTER,
                normalised_unit="Wh",
                value__isnull=False,
            )
            .order_by("-value", "timestamp")
            .values("timestamp")[:1]
        )
        queryset = queryset.annotate(
            charge_end_at=Case(
                When(done_charging_at__isnull=False, then=F("done_charging_at")),
                When(stopped_at__isnull=False, then=Subquery(reached_final)),
                default=None,
                output_field=DateTimeField(),
            )
        )
    rows = queryset.values(
        "vehicle_id",
        "started_at",
        "stopped_at",
        "energy_wh",
        "charge_point__site_id",
        "charge_point__site__time_zone",
        *(["charge_end_at"] if with_end else []),
    )

    zones: dict[str, ZoneInfo] = {}
    sessions = []
    for row in rows.iterator(chunk_size=2000):
        name = row["charge_point__site__time_zone"]
        tz = zones.get(name) or zones.setdefault(name, ZoneInfo(name))
        session = _Session(
            vehicle_id=row["vehicle_id"],
            site_id=row["charge_point__site_id"],
            started_at=row["started_at"],
            stopped_at=row["stopped_at"],
            charge_end_at=row.get("charge_end_at"),
            energy_wh=row["energy_wh"],
            tz=tz,
        )
        if first <= session.local_day <= last:
            sessions.append(session)
    return sessions


def _peak_seconds(start: datetime, end: datetime, tz: ZoneInfo) -> float:
    """Seconds of [start, end) inside the local peak window of each day."""
    total = 0.0
    day = start.astimezone(tz).date()
    last_day = end.astimezone(tz).date()
    while day <= last_day:
        peak_from = datetime.combine(
            day, time(settings.FLEET_PEAK_START_HOUR), tzinfo=tz
        )
        peak_to = (
            datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)
            if settings.FLEET_PEAK_END_HOUR == 24
            else datetime.combine(day, time(settings.FLEET_PEAK_END_HOUR), tzinfo=tz)
        )
        overlap = (min(end, peak_to) - max(start, peak_from)).total_seconds()
        total += max(0.0, overlap)
        day += timedelta(days=1)
    return total


def _in_peak(moment: datetime, tz: ZoneInfo) -> bool:
    local_hour = moment.astimezone(tz).hour
    return settings.FLEET_PEAK_START_HOUR <= local_hour < settings.FLEET_PEAK_END_HOUR


def _peak_energy_wh(session: _Session) -> float:
    """The session's energy delivered inside peak hours, spread evenly over its
    charging interval."""
    end = session.charge_end_at or session.stopped_at
    end = min(end, session.stopped_at)
    seconds = (end - session.started_at).total_seconds()
    if seconds <= 0:
        return (
            float(session.energy_wh)
            if _in_peak(session.started_at, session.tz)
            else 0.0
        )
    return (
        session.energy_wh * _peak_seconds(session.started_at, end, session.tz) / seconds
    )


def _figures(sessions: list[_Session]) -> ChargingFigures:
    figures = ChargingFigures(sessions=len(sessions))
    energy_wh = 0
    peak_wh = 0.0
    durations_s: list[float] = []
    idles_s: list[float] = []
    for session in sessions:
        durations_s.append((session.stopped_at - session.started_at).total_seconds())
        if session.charge_end_at is not None:
            idle = (session.stopped_at - session.charge_end_at).total_seconds()
            idles_s.append(max(0.0, idle))
        if session.energy_wh is None:
            figures.sessions_without_energy += 1
            continue
        energy_wh += session.energy_wh
        peak_wh += _peak_energy_wh(session)

    figures.energy_kwh = round(energy_wh / 1000, 3)
    figures.peak_energy_kwh = round(peak_wh / 1000, 3)
    if energy_wh > 0:
        figures.peak_share = round(peak_wh / energy_wh, 4)
    if durations_s:
        figures.avg_duration_h = round(sum(durations_s) / len(durations_s) / 3600, 3)
    if idles_s:
        figures.avg_idle_h = round(sum(idles_s) / len(idles_s) / 3600, 3)
    figures.idle_known_sessions = len(idles_s)
    return figures


def _next_day_by_vehicle(
    *, vehicle_ids: list[int], next_day: date
) -> dict[int, NextDayDemand]:
    """The site forecast's share where it covers the day, else the same-weekday
    baseline, for each vehicle (see the module docstring)."""
    same_weekdays = [
        next_day - timedelta(weeks=w) for w in range(1, BASELINE_WEEKS + 1)
    ]
    sessions = _load_sessions(
        vehicle_ids=vehicle_ids,
        first=same_weekdays[-1],
        last=next_day - timedelta(days=1),
        with_end=False,
    )
    shares = _site_share_by_vehicle(sessions=sessions, next_day=next_day)
    first_started = dict(
        ChargingSession.objects.filter(vehicle_id__in=vehicle_ids)
        .values("vehicle_id")
        .annotate(first=Min("started_at"))
        .values_list("vehicle_id", "first")
    )
    energy_by_day: dict[tuple[int, date], int] = defaultdict(int)
    for session in sessions:
        if session.local_day in same_weekdays and session.energy_wh is not None:
            energy_by_day[(session.vehicle_id, session.local_day)] += session.energy_wh

    result = {}
    for vehicle_id in vehicle_ids:
        if vehicle_id in shares:
            result[vehicle_id] = shares[vehicle_id]
            continue
        first = first_started.get(vehicle_id)
        # UTC date is close enough to decide whether a week predates the vehicle.
        days = [d for d in same_weekdays if first is not None and d >= first.date()]
        if not days:
            result[vehicle_id] = NextDayDemand(
                day=next_day,
                energy_kwh=None,
                is_baseline=True,
                method=BASELINE_METHOD,
                note="No history before this day.",
            )
            continue
        total_wh = sum(energy_by_day[(vehicle_id, d)] for d in days)
        result[vehicle_id] = NextDayDemand(
            day=next_day,
            energy_kwh=round(total_wh / len(days) / 1000, 3),
            is_baseline=True,
            method=BASELINE_METHOD,
            basis_days=len(days),
        )
    return result


def _site_share_by_vehicle(
    *, sessions: list[_Session], next_day: date
) -> dict[int, NextDayDemand]:
    """Site forecast x the vehicle's share of its home site's last four weeks."""
    by_vehicle_site: dict[tuple[int, int], int] = defaultdict(int)
    for session in sessions:
        by_vehicle_site[(session.vehicle_id, session.site_id)] += session.energy_wh or 0
    home: dict[int, tuple[int, int]] = {}
    for (vehicle_id, site_id), energy_wh in by_vehicle_site.items():
        if energy_wh > home.get(vehicle_id, (0, 0))[1]:
            home[vehicle_id] = (site_id, energy_wh)
    if not home:
        return {}

    forecasts = {}
    for site in Site.objects.filter(pk__in={site for site, _ in home.values()}):
        forecast = tomorrow_energy(site=site)
        if forecast.day == next_day and forecast.energy_kwh is not None:
            forecasts[site.pk] = forecast
    if not forecasts:
        return {}
    site_energy_wh: dict[int, int] = defaultdict(int)
    for session in _load_sessions(
        vehicle_ids=None,
        site_ids=list(forecasts),
        first=next_day - timedelta(weeks=BASELINE_WEEKS),
        last=next_day - timedelta(days=1),
        with_end=False,
    ):
        site_energy_wh[session.site_id] += session.energy_wh or 0

    result = {}
    for vehicle_id, (site_id, energy_wh) in home.items():
        forecast = forecasts.get(site_id)
        if forecast is None or not site_energy_wh[site_id]:
            continue
        share = energy_wh / site_energy_wh[site_id]
        result[vehicle_id] = NextDayDemand(
            day=next_day,
            energy_kwh=round(forecast.energy_kwh * share, 3),
            is_baseline=forecast.is_baseline,
            method=SITE_SHARE_METHOD,
            model_version=None if forecast.is_baseline else forecast.label,
            basis_days=BASELINE_WEEKS * 7,
            label=f"{forecast.label} x {share:.1%} of the site's energy",
        )
    return result


def _sum_demand(parts: list[NextDayDemand], next_day: date) -> NextDayDemand:
    known = [p for p in parts if p.energy_kwh is not None]
    missing = len(parts) - len(known)
    methods = {p.method for p in known} or {BASELINE_METHOD}
    versions = {p.model_version for p in known if p.model_version}
    return NextDayDemand(
        day=next_day,
        energy_kwh=round(sum(p.energy_kwh for p in known), 3) if known else None,
        is_baseline=all(p.is_baseline for p in parts),
        method=methods.pop() if len(methods) == 1 else "mixed",
        model_version=", ".join(sorted(versions)) or None,
        basis_days=max((p.basis_days for p in known), default=0),
        note=f"{missing} vehicle(s) without history left out." if missing else "",
        label="sum of its vehicles",
    )


def latest_session_day() -> date | None:
    """The UTC day of the latest session start: where 'now' is for old data."""
    latest = ChargingSession.objects.order_by("-started_at").values_list(
        "started_at", flat=True
    )[:1]
    return latest[0].date() if latest else None


def fleet_insights(
    *,
    date_from: date,
    date_to: date,
    fleet_ids: list[int] | None = None,
) -> FleetInsights:
    """Figures per fleet and per vehicle for sessions started date_from..date_to
    (inclusive, site local days), and the next day's demand."""
    if date_to < date_from:
        raise ValueError("date_to is before date_from")
    if (date_to - date_from).days >= MAX_RANGE_DAYS:
        raise ValueError(f"The range is longer than {MAX_RANGE_DAYS} days")
    next_day = date_to + timedelta(days=1)

    vehicles = Vehicle.objects.order_by("name", "id").values("id", "name", "fleet_id")
    if fleet_ids is not None:
        vehicles = vehicles.filter(fleet_id__in=fleet_ids)
    vehicles = list(vehicles)
    vehicle_ids = [v["id"] for v in vehicles]
    sessions = _load_sessions(
        vehicle_ids=None if fleet_ids is None else vehicle_ids,
        first=date_from,
        last=date_to,
        with_end=True,
    )
    completed = [s for s in sessions if s.stopped_at is not None]
    by_vehicle: dict[int, list[_Session]] = defaultdict(list)
    for session in completed:
        by_vehicle[session.vehicle_id].append(session)
    # Vehicles that did not charge in the range are left out of the answer.
    vehicles = [v for v in vehicles if v["id"] in by_vehicle]
    baselines = _next_day_by_vehicle(
        vehicle_ids=[v["id"] for v in vehicles], next_day=next_day
    )
    fleet_names = dict(
        Fleet.objects.filter(
            Q(pk__in={v["fleet_id"] for v in vehicles if v["fleet_id"]})
        ).values_list("id", "name")
    )

    grouped: dict[int | None, list[dict]] = defaultdict(list)
    for vehicle in vehicles:
        grouped[vehicle["fleet_id"]].append(vehicle)
    fleets = []
    for fleet_id in sorted(grouped, key=lambda f: (f is None, fleet_names.get(f, ""))):
        members = grouped[fleet_id]
        fleet_sessions = [s for v in members for s in by_vehicle[v["id"]]]
        fleets.append(
            FleetInsight(
                fleet_id=fleet_id,
                name=fleet_names.get(fleet_id, "Vehicles without a fleet"),
                figures=_figures(fleet_sessions),
                next_day=_sum_demand([baselines[v["id"]] for v in members], next_day),
                vehicles=[
                    VehicleInsight(
                        vehicle_id=v["id"],
                        name=v["name"],
                        figures=_figures(by_vehicle[v["id"]]),
                        next_day=baselines[v["id"]],
                    )
                    for v in members
                ],
            )
        )
    return FleetInsights(
        date_from=date_from,
        date_to=date_to,
        next_day=next_day,
        peak_start_hour=settings.FLEET_PEAK_START_HOUR,
        peak_end_hour=settings.FLEET_PEAK_END_HOUR,
        active_sessions_excluded=len(sessions) - len(completed),
        fleets=fleets,
    )


# Fleet insights read weeks of sessions and each site's forecast: a few hundred
# ms of database and Python per call, measured with bench/api_latency.py. The
# figures of a range change only as sessions arrive, so answers are kept in the
# cache (Redis in production, shared by all workers) for this long.
CACHE_SECONDS = 60


def fleet_insights_cached(
    *, date_from: date, date_to: date, fleet_ids: list[int] | None = None
) -> FleetInsights:
    """``fleet_insights``, answered from the cache when asked within a minute."""
    fleets = "all" if fleet_ids is None else ",".join(map(str, sorted(fleet_ids)))
    key = f"fleet-insights:v1:{date_from}:{date_to}:{fleets}"
    cached = cache.get(key)
    if cached is not None:
        return cached

    insights = fleet_insights(date_from=date_from, date_to=date_to, fleet_ids=fleet_ids)

    cache.set(key, insights, CACHE_SECONDS)
    return insights
