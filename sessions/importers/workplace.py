"""Workplace charging at 25 sites of one US firm (Asensio et al., Sci. Data 2021).

``station_data_dataverse.csv``: one row per session; years are written
``0014``/``0015`` (2014/2015 in the original file) and are read as 20xx.
One site per ``locationId``, one charge point per ``stationId``.

Times carry no zone and the paper does not say where the sites are, so the
default zone is UTC: the stored times then read exactly as written in the
file, and sessions are flagged ``timestamp_zone_assumed``. Give the real zone
with ``--timezone`` (e.g. America/New_York) when it is known.

Users with ``managerVehicle = 1`` drive the vehicle type the firm's managers
got through its incentive programme; their vehicles form one fleet.
"""

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from django.utils.text import slugify

from sessions.importers.base import (
    CsvRow,
    FleetSpec,
    ParsedFile,
    RowError,
    RowRejected,
    SessionRecord,
    SiteSpec,
    UserSpec,
    csv_rows,
    kwh_to_wh,
    local_to_utc,
    stop_check,
    text_read,
)

FORMAT = "workplace"
RANK = 1
DEFAULT_TIME_ZONE = "UTC"
COLUMNS = (
    "sessionId",
    "kwhTotal",
    "created",
    "ended",
    "userId",
    "stationId",
    "locationId",
    "managerVehicle",
    "facilityType",
)
# facilityType codes from the paper's data dictionary.
FACILITY_TYPES = {"1": "manufacturing", "2": "office", "3": "R&D", "4": "other"}
MANAGER_FLEET = FleetSpec(
    name="Workplace manager vehicles",
    description="Vehicles of the type the firm's managers got through a corporate "
    "incentive programme (managerVehicle = 1 in the workplace data set).",
)
_SHORT_YEAR = re.compile(r"^00(\d\d)-")
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def sniff(head: str) -> bool:
    first = head.splitlines()[0] if head else ""
    names = [name.strip() for name in first.split(",")]
    return "sessionId" in names and "locationId" in names


def parse(path: Path, *, label: str, time_zone: ZoneInfo | None = None) -> ParsedFile:
    zone = time_zone or ZoneInfo(DEFAULT_TIME_ZONE)
    total, rows = csv_rows(text_read(path), required=COLUMNS)
    return ParsedFile(total, _records(rows, label=label, zone=zone))


def _records(
    rows: Iterator[CsvRow | RowError], *, label: str, zone: ZoneInfo
) -> Iterator[SessionRecord | RowError]:
    for row in rows:
        if isinstance(row, RowError):
            yield RowError(label, row.line, row.message)
            continue
        try:
            yield _record(row, zone=zone)
        except RowRejected as exc:
            yield RowError(label, row.line, str(exc))


def _record(row: CsvRow, *, zone: ZoneInfo) -> SessionRecord:
    values = {name: value.strip() for name, value in row.values.items()}
    for name in ("sessionId", "kwhTotal", "created", "userId", "stationId"):
        if values[name] in ("", "NA"):
            raise RowRejected(f"{name} is empty")
    location = values["locationId"]
    if location in ("", "NA"):
        raise RowRejected("locationId is empty")
    facility = FACILITY_TYPES.get(values["facilityType"], "facility type unknown")
    site = SiteSpec(
        code=f"workplace-{slugify(location)}",
        name=f"Workplace location {location} ({facility})",
        time_zone=zone.key,
    )

    started_at, flags = local_to_utc(_local(values["created"], "created"), zone)
    stopped_at = None
    if values["ended"] in ("", "NA"):
        flags.append("stop_time_missing")
    else:
        stopped_at, stop_flags = local_to_utc(_local(values["ended"], "ended"), zone)
        flags += [flag for flag in stop_flags if flag not in flags]
    stop_check(started_at, stopped_at)
    energy_wh = kwh_to_wh(values["kwhTotal"], name="kwhTotal")

    user = values["userId"]
    return SessionRecord(
        external_id=f"workplace:{values['sessionId']}",
        site=site,
        charge_point_identity=f"{site.code}-{values['stationId']}",
        started_at=started_at,
        stopped_at=stopped_at,
        energy_wh=energy_wh,
        line=row.line,
        raw_start_timestamp=values["created"],
        raw_stop_timestamp=values["ended"],
        user=UserSpec(
            token_value=f"WP-{user}",
            vehicle_external_id=f"workplace:user:{user}",
            vehicle_name=f"Workplace user {user}",
            owner=f"Workplace data set user {user}",
            fleet=MANAGER_FLEET if values["managerVehicle"] == "1" else None,
        ),
        timestamp_zone_assumed=True,
        flags=flags,
    )


def _local(value: str, name: str) -> datetime:
    text = _SHORT_YEAR.sub(r"20\1-", value)
    try:
        return datetime.strptime(text, _TIME_FORMAT)  # noqa: DTZ007 (local, see doc)
    except ValueError:
        raise RowRejected(
            f"{name} is not a yyyy-mm-dd HH:MM:SS time: {value!r}"
        ) from None
