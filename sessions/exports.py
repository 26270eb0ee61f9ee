"""CSV rows of charging sessions: times in the site's zone and in UTC, energy in kWh."""

import csv
import io
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import UTC, datetime
from functools import cache
from zoneinfo import ZoneInfo

from asgiref.sync import sync_to_async
from django.db.models import QuerySet

from sessions.models import ChargingSession
from sessions.selectors import session_export_chunk, session_export_chunks

CSV_HEADER = [
    "session_id",
    "site",
    "charge_point",
    "connector",
    "token",
    "vehicle",
    "time_zone",
    "started_local",
    "stopped_local",
    "started_utc",
    "stopped_utc",
    "duration_min",
    "energy_kwh",
    "requested_energy_kwh",
    "stop_reason",
    "source",
]


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _local(value: datetime | None, tz: ZoneInfo) -> str:
    return "" if value is None else value.astimezone(tz).isoformat(sep=" ")


def _utc(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).isoformat(sep=" ")


def _kwh(value_wh: int | None) -> str:
    return "" if value_wh is None else f"{value_wh / 1000:.3f}"


def session_csv_row(row) -> list[str | int]:
    """One CSV row from a named tuple of ``EXPORT_COLUMNS``."""
    tz = _zone(row.charge_point__site__time_zone)
    return [
        row.pk,
        row.charge_point__site__code,
        row.charge_point__identity,
        row.connector_number,
        row.id_token__value or row.id_tag,
        row.vehicle__name or "",
        row.charge_point__site__time_zone,
        _local(row.started_at, tz),
        _local(row.stopped_at, tz),
        _utc(row.started_at),
        _utc(row.stopped_at),
        ""
        if row.stopped_at is None
        else round((row.stopped_at - row.started_at).total_seconds() / 60, 1),
        _kwh(row.energy_wh),
        _kwh(row.requested_energy_wh),
        row.stop_reason,
        row.source,
    ]


def _csv_text(rows: Iterable[list]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()


def session_csv_lines(*, queryset: QuerySet[ChargingSession]) -> Iterator[str]:
    """The CSV text, one chunk of sessions at a time (for a WSGI server)."""
    yield _csv_text([CSV_HEADER])
    for chunk in session_export_chunks(queryset=queryset):
        yield _csv_text(session_csv_row(s) for s in chunk)


async def session_csv_lines_async(
    *, queryset: QuerySet[ChargingSession]
) -> AsyncIterator[str]:
    """The same text for an ASGI server: each chunk is read in a worker thread,
    so a large export streams instead of being collected in memory first."""
    yield _csv_text([CSV_HEADER])
    after = None
    while True:
        chunk = await sync_to_async(session_export_chunk)(
            queryset=queryset, after=after
        )
        if not chunk:
            return
        yield await sync_to_async(_csv_text)(session_csv_row(s) for s in chunk)
        after = (chunk[-1].started_at, chunk[-1].pk)
