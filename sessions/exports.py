"""CSV rows of charging sessions: times in the site's zone and in UTC, energy in kWh."""

import csv
import io
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import UTC, datetime
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


def _local(value: datetime | None, tz: ZoneInfo) -> str:
    return "" if value is None else value.astimezone(tz).isoformat(sep=" ")


def _utc(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).isoformat(sep=" ")


def _kwh(value_wh: int | None) -> str:
    return "" if value_wh is None else f"{value_wh / 1000:.3f}"


def session_csv_row(session: ChargingSession) -> list[str | int]:
    site = session.charge_point.site
    tz = site.tz
    duration = session.duration
    return [
        session.pk,
        site.code,
        session.charge_point.identity,
        session.connector_number,
        session.id_token.value if session.id_token else session.id_tag,
        session.vehicle.name if session.vehicle else "",
        site.time_zone,
        _local(session.started_at, tz),
        _local(session.stopped_at, tz),
        _utc(session.started_at),
        _utc(session.stopped_at),
        "" if duration is None else round(duration.total_seconds() / 60, 1),
        _kwh(session.energy_wh),
        _kwh(session.requested_energy_wh),
        session.stop_reason,
        session.source,
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
