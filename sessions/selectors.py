"""Reads of charging sessions for the dashboard, the session pages and the export.

Calendar days are each site's own: "today" at a Pasadena site starts at local
midnight there. Periods are therefore filtered per site in one query (an OR of
one condition per site), which stays a single query however many sessions exist.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.core.paginator import Page, Paginator
from django.db.models import (
    Count,
    DateTimeField,
    DurationField,
    ExpressionWrapper,
    Q,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, Greatest, Least, TruncDate

from sessions.models import ChargingSession, MeterSample
from stations.models import ChargePoint, Site

# The dashboard charts this many days of data, ending at the latest data day.
DAILY_ENERGY_DAYS = 30
# Utilisation is the share of connector-hours occupied over this many days.
UTILISATION_DAYS = 30


_FIRST_SAFE_DAY = date(1, 1, 3)
_LAST_SAFE_DAY = date(9999, 12, 28)


def local_day_bounds(
    day_from: date, day_to: date, tz: ZoneInfo
) -> tuple[datetime, datetime]:
    """UTC instants of local midnight starting ``day_from`` and ending ``day_to``.

    Days at the ends of the calendar (a filter typed as 9999-12-31) are pulled
    in by a few days: the day after, shifted to UTC, would not exist.
    """
    day_from = max(day_from, _FIRST_SAFE_DAY)
    day_to = min(day_to, _LAST_SAFE_DAY)
    start = datetime.combine(day_from, time.min, tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day_to + timedelta(days=1), time.min, tzinfo=tz).astimezone(
        UTC
    )
    return start, end


def _started_in_local_days(sites: Iterable[Site], day_from: date, day_to: date) -> Q:
    """Sessions that started on local days ``day_from``..``day_to`` of their site."""
    condition = Q(pk__in=[])
    for site in sites:
        start, end = local_day_bounds(day_from, day_to, site.tz)
        condition |= Q(
            charge_point__site_id=site.pk, started_at__gte=start, started_at__lt=end
        )
    return condition


def _started_on_sites_today(sites: Iterable[Site], now: datetime, month: bool) -> Q:
    """Sessions started today (or this month) in each site's own calendar."""
    condition = Q(pk__in=[])
    for site in sites:
        today = now.astimezone(site.tz).date()
        day_from = today.replace(day=1) if month else today
        start, end = local_day_bounds(day_from, today, site.tz)
        condition |= Q(
            charge_point__site_id=site.pk, started_at__gte=start, started_at__lt=end
        )
    return condition


def charge_point_ids_by_site() -> dict[int, list[int]]:
    """The ids of each site's charge points (sites without chargers left out)."""
    ids: dict[int, list[int]] = {}
    for pk, site_id in ChargePoint.objects.order_by().values_list("pk", "site_id"):
        ids.setdefault(site_id, []).append(pk)
    return ids


@dataclass
class LatestData:
    """The last day with sessions, in the zone of the site where it happened."""

    started_at: datetime
    day: date
    time_zone: str


def latest_data() -> LatestData | None:
    """When the newest session started (index scan on ``started_at``)."""
    latest = (
        ChargingSession.objects.select_related("charge_point__site")
        .only("started_at", "charge_point__site__time_zone")
        .order_by("-started_at")
        .first()
    )
    if latest is None:
        return None
    site = latest.charge_point.site
    return LatestData(
        started_at=latest.started_at,
        day=latest.started_at.astimezone(site.tz).date(),
        time_zone=site.time_zone,
    )


@dataclass
class PeriodFigures:
    sessions: int = 0
    energy_wh: int = 0

    @property
    def energy_kwh(self) -> float:
        return self.energy_wh / 1000


@dataclass
class SiteFigures:
    """Sessions and energy of one site (or all of them) over the dashboard periods."""

    today: PeriodFigures = field(default_factory=PeriodFigures)
    month: PeriodFigures = field(default_factory=PeriodFigures)
    data_day: PeriodFigures = field(default_factory=PeriodFigures)
    data_month: PeriodFigures = field(default_factory=PeriodFigures)
    all_time: PeriodFigures = field(default_factory=PeriodFigures)
    utilisation: float | None = None

    def add(self, other: "SiteFigures") -> None:
        for name in ("today", "month", "data_day", "data_month", "all_time"):
            mine, theirs = getattr(self, name), getattr(other, name)
            mine.sessions += theirs.sessions
            mine.energy_wh += theirs.energy_wh


def session_figures_by_site(
    *,
    sites: list[Site],
    chargers: dict[int, list[int]],
    now: datetime,
    data_day: date | None,
) -> dict[int, SiteFigures]:
    """Session counts and energy per site for today, this month, the latest data
    day and its month, and all time, in one query.

    A session counts on the day it started; its energy is what it delivered in
    total (``energy_wh``), so a session still running adds its energy once the
    charger reports its stop.
    """
    periods = {
        "today": _started_on_sites_today(sites, now, month=False),
        "month": _started_on_sites_today(sites, now, month=True),
    }
    # Only sessions since the earliest period start can count: the index on
    # started_at narrows the rows before the per-site conditions are evaluated.
    earliest = now - timedelta(days=32)
    if data_day is not None:
        periods["data_day"] = _started_in_local_days(sites, data_day, data_day)
        periods["data_month"] = _started_in_local_days(
            sites, data_day.replace(day=1), data_day
        )
        earliest = min(
            earliest, datetime.combine(data_day.replace(day=1), time.min, tzinfo=UTC)
        ) - timedelta(days=1)
    aggregates = {}
    for name, condition in periods.items():
        aggregates[f"{name}_n"] = Count("id", filter=condition)
        aggregates[f"{name}_wh"] = Sum("energy_wh", filter=condition)

    recent = (
        ChargingSession.objects.filter(started_at__gte=earliest)
        .order_by()
        .values("charge_point__site_id")
        .annotate(**aggregates)
    )
    # All time: one pass over the session table with a sum per site, each over
    # that site's charger ids (no join, no GROUP BY). On SQLite, the embedded
    # default, a GROUP BY or join walked the charger index with one row read per
    # session: 156 ms on the ACN data against 63 ms for this plain pass.
    all_time = ChargingSession.objects.aggregate(
        **{
            f"{kind}_{site_id}": aggregate(
                field, filter=Q(charge_point_id__in=chargers[site_id])
            )
            for site_id in chargers
            for kind, aggregate, field in (("n", Count, "id"), ("wh", Sum, "energy_wh"))
        }
    )

    figures = {site.pk: SiteFigures() for site in sites}
    for row in recent:
        site_figures = figures.setdefault(row["charge_point__site_id"], SiteFigures())
        for name in periods:
            setattr(
                site_figures,
                name,
                PeriodFigures(
                    sessions=row[f"{name}_n"], energy_wh=row[f"{name}_wh"] or 0
                ),
            )
    for site_id in chargers:
        site_figures = figures.setdefault(site_id, SiteFigures())
        site_figures.all_time = PeriodFigures(
            sessions=all_time[f"n_{site_id}"], energy_wh=all_time[f"wh_{site_id}"] or 0
        )
    return figures


def utilisation_by_site(
    *,
    sites: list[Site],
    chargers: dict[int, list[int]],
    last_day: date,
    capacity: dict[int, int],
) -> dict[int, float]:
    """Share of connector-hours occupied by sessions over the ``UTILISATION_DAYS``
    local days ending ``last_day``, per site (0..1).

    A session occupies its connector from start to stop (plugged in, charging or
    not); a running session up to the window's end. One query per time zone.
    """
    by_zone: dict[str, list[Site]] = {}
    for site in sites:
        by_zone.setdefault(site.time_zone, []).append(site)

    occupied: dict[int, timedelta] = {}
    window_hours: dict[str, float] = {}
    first_day = last_day - timedelta(days=UTILISATION_DAYS - 1)
    for zone, zone_sites in by_zone.items():
        start, end = local_day_bounds(first_day, last_day, ZoneInfo(zone))
        window_hours[zone] = (end - start).total_seconds() / 3600
        overlap = ExpressionWrapper(
            Least(
                Coalesce("stopped_at", Value(end, output_field=DateTimeField())),
                Value(end, output_field=DateTimeField()),
            )
            - Greatest("started_at", Value(start, output_field=DateTimeField())),
            output_field=DurationField(),
        )
        # A sum per site over its charger ids, as for the all-time figures: no
        # join for SQLite's planner to walk session by session.
        zone_chargers = {s.pk: chargers[s.pk] for s in zone_sites if s.pk in chargers}
        if not zone_chargers:
            continue
        # started_at < end sits in the sums' filters, not in WHERE: in WHERE,
        # SQLite took the started_at index for it and read nearly every session
        # one by one (117 ms against 60 ms for a plain pass, on a busy machine).
        sums = ChargingSession.objects.filter(
            Q(stopped_at__gt=start) | Q(stopped_at__isnull=True)
        ).aggregate(
            **{
                f"site_{site_id}": Sum(
                    overlap, filter=Q(charge_point_id__in=ids, started_at__lt=end)
                )
                for site_id, ids in zone_chargers.items()
            }
        )
        for site_id in zone_chargers:
            occupied[site_id] = sums[f"site_{site_id}"] or timedelta()

    shares = {}
    for site in sites:
        available_h = capacity.get(site.pk, 0) * window_hours[site.time_zone]
        used_h = occupied.get(site.pk, timedelta()).total_seconds() / 3600
        shares[site.pk] = min(used_h / available_h, 1.0) if available_h else 0.0
    return shares


@dataclass
class DailyEnergy:
    days: list[date]
    # site id -> kWh per day, in the order of ``days``
    kwh_by_site: dict[int, list[float]]


def daily_energy(*, sites: list[Site], last_day: date, days: int) -> DailyEnergy:
    """Energy of the sessions started on each local day, per site (one query per
    time zone), for the ``days`` days ending ``last_day``."""
    first_day = last_day - timedelta(days=days - 1)
    all_days = [first_day + timedelta(days=i) for i in range(days)]
    by_zone: dict[str, list[Site]] = {}
    for site in sites:
        by_zone.setdefault(site.time_zone, []).append(site)

    kwh: dict[int, dict[date, float]] = {site.pk: {} for site in sites}
    for zone, zone_sites in by_zone.items():
        tz = ZoneInfo(zone)
        start, end = local_day_bounds(first_day, last_day, tz)
        rows = (
            ChargingSession.objects.filter(
                charge_point__site__in=zone_sites,
                started_at__gte=start,
                started_at__lt=end,
            )
            .annotate(day=TruncDate("started_at", tzinfo=tz))
            .order_by()
            .values("charge_point__site_id", "day")
            .annotate(energy_wh=Sum("energy_wh"))
        )
        for row in rows:
            kwh[row["charge_point__site_id"]][row["day"]] = (
                row["energy_wh"] or 0
            ) / 1000

    return DailyEnergy(
        days=all_days,
        kwh_by_site={
            site_id: [round(per_day.get(d, 0.0), 3) for d in all_days]
            for site_id, per_day in kwh.items()
        },
    )


def session_list(*, queryset: QuerySet[ChargingSession] | None = None) -> QuerySet:
    """Sessions with what the list shows, newest first (no per-row queries)."""
    if queryset is None:
        queryset = ChargingSession.objects.all()
    return queryset.select_related(
        "charge_point__site", "id_token", "vehicle"
    ).order_by("-started_at", "-pk")


def session_page(
    *, queryset: QuerySet[ChargingSession], number: object, per_page: int
) -> Page:
    """One page of sessions, newest first.

    The page's ids are found first (an index-only walk, however deep the page),
    then only those rows are read with their charger, site, token and vehicle:
    an OFFSET over the joined rows made the last of 549 ACN pages slow.
    """
    ids = queryset.order_by("-started_at", "-pk").values_list("pk", flat=True)
    page = Paginator(ids, per_page).get_page(number)
    rows = session_list(queryset=ChargingSession.objects.filter(pk__in=list(page)))
    page.object_list = list(rows)
    return page


def session_get(*, pk: int) -> ChargingSession:
    """One session with its charger, site, token and vehicle."""
    return ChargingSession.objects.select_related(
        "charge_point__site", "connector", "id_token", "vehicle__fleet"
    ).get(pk=pk)


# OCPP measurands the session chart draws (OCPP 1.6 §7.31).
ENERGY_MEASURAND = "Energy.Active.Import.Register"
POWER_MEASURAND = "Power.Active.Import"
# A chart wider than this many points is thinned: a screen shows no more anyway.
CHART_MAX_POINTS = 1500


@dataclass
class SessionCurve:
    """Power (kW) and energy (kWh since the session began) over time."""

    timestamps: list[datetime]
    power_kw: list[float | None]
    energy_kwh: list[float | None]
    power_derived: bool
    sample_count: int

    @property
    def is_empty(self) -> bool:
        return not self.timestamps


def session_curve(*, session: ChargingSession) -> SessionCurve:
    """The session's meter samples as a power and an energy series.

    Totals are used where the charger sent them (no phase); a charger that only
    reports per phase is summed per timestamp. Where no power was sampled it is
    derived from the energy register between two samples, and said so.
    """
    rows = (
        MeterSample.objects.filter(
            session=session,
            measurand__in=[ENERGY_MEASURAND, POWER_MEASURAND],
            value__isnull=False,
        )
        .order_by()
        .values("timestamp", "measurand", "phase")
        .annotate(total=Sum("value"))
        .order_by("timestamp")
    )
    sample_count = MeterSample.objects.filter(session=session).count()

    series: dict[str, dict[str, dict[datetime, float]]] = {
        ENERGY_MEASURAND: {},
        POWER_MEASURAND: {},
    }
    for row in rows:
        per_phase = series[row["measurand"]].setdefault(row["phase"] or "", {})
        per_phase[row["timestamp"]] = per_phase.get(row["timestamp"], 0) + row["total"]
    energy_wh = _totals(series[ENERGY_MEASURAND])
    power_w = _totals(series[POWER_MEASURAND])

    timestamps = sorted(set(energy_wh) | set(power_w))
    power_derived = not power_w and len(energy_wh) > 1
    if power_derived:
        power_w = _power_from_energy(energy_wh)
    baseline_wh = session.meter_start_wh
    if baseline_wh is None and energy_wh:
        baseline_wh = energy_wh[min(energy_wh)]

    step = max(1, -(-len(timestamps) // CHART_MAX_POINTS))
    shown = timestamps[::step]
    if timestamps and shown[-1] != timestamps[-1]:
        shown.append(timestamps[-1])
    return SessionCurve(
        timestamps=shown,
        power_kw=[_round(power_w.get(t), 1000) for t in shown],
        energy_kwh=[
            None
            if t not in energy_wh
            else round((energy_wh[t] - baseline_wh) / 1000, 3)
            for t in shown
        ],
        power_derived=power_derived,
        sample_count=sample_count,
    )


def _totals(per_phase: dict[str, dict[datetime, float]]) -> dict[datetime, float]:
    if "" in per_phase:
        return per_phase[""]
    summed: dict[datetime, float] = {}
    for values in per_phase.values():
        for t, v in values.items():
            summed[t] = summed.get(t, 0) + v
    return summed


def _power_from_energy(energy_wh: dict[datetime, float]) -> dict[datetime, float]:
    points = sorted(energy_wh.items())
    power = {}
    for (t0, e0), (t1, e1) in zip(points, points[1:], strict=False):
        hours = (t1 - t0).total_seconds() / 3600
        if hours > 0:
            power[t1] = max(e1 - e0, 0) / hours
    return power


def _round(value: float | None, divisor: float) -> float | None:
    return None if value is None else round(value / divisor, 3)


# Rows fetched per query by the CSV export. On the ACN data (PostgreSQL) a chunk
# of 2000 is read in about 20 ms; larger chunks only hold more rows in memory.
EXPORT_CHUNK_SIZE = 2000
# Columns of an export row, read as plain tuples: building 27k model instances
# (with their charger, site, token and vehicle) took most of the export's time.
EXPORT_COLUMNS = (
    "pk",
    "charge_point__site__code",
    "charge_point__site__time_zone",
    "charge_point__identity",
    "connector_number",
    "id_token__value",
    "id_tag",
    "vehicle__name",
    "started_at",
    "stopped_at",
    "energy_wh",
    "requested_energy_wh",
    "stop_reason",
    "source",
)


def session_export_chunks(
    *, queryset: QuerySet[ChargingSession], chunk_size: int | None = None
) -> Iterator[list[tuple]]:
    """The filtered sessions, newest first, in chunks fetched by keyset paging.

    Each chunk is its own short query (no server-side cursor held open between
    chunks), so the export streams under ASGI as well as WSGI. Rows are named
    tuples of ``EXPORT_COLUMNS``.
    """
    after: tuple[datetime, int] | None = None
    while True:
        chunk = session_export_chunk(queryset=queryset, after=after, size=chunk_size)
        if not chunk:
            return
        yield chunk
        after = (chunk[-1].started_at, chunk[-1].pk)


def session_export_chunk(
    *,
    queryset: QuerySet[ChargingSession],
    after: tuple[datetime, int] | None,
    size: int | None = None,
) -> list[tuple]:
    """One chunk of the export: the ``size`` sessions that follow ``after``."""
    rows = queryset.order_by("-started_at", "-pk")
    if after is not None:
        started_at, pk = after
        rows = rows.filter(
            Q(started_at__lt=started_at) | Q(started_at=started_at, pk__lt=pk)
        )
    rows = rows.values_list(*EXPORT_COLUMNS, named=True)
    return list(rows[: size or EXPORT_CHUNK_SIZE])


def session_average_power_kw(session: ChargingSession) -> float | None:
    """Average power over the charging time (to done-charging where known)."""
    end = session.done_charging_at or session.stopped_at
    if session.energy_wh is None or end is None or end <= session.started_at:
        return None
    hours = (end - session.started_at).total_seconds() / 3600
    return round(session.energy_wh / 1000 / hours, 2)
