"""Residential charging reports from Trondheim (Sørensen et al., Data in Brief 2021).

``Dataset 1_EV charging reports.csv``: ``;``-separated, decimal comma, times
``dd.mm.yyyy HH:MM`` in Norwegian local time without a zone (``--timezone``
overrides the default Europe/Oslo). One site per garage (``Garage_ID``).

Charge points: a *Private* session is on the user's own charge point, so each
private user gets one charge point per garage (``<site>-<User_ID>``); a
*Shared* session is on the shared charge point named by ``Shared_ID``
(``<site>-<Shared_ID>``).

Fleets: users who only ever charged on shared charge points are the shared
cars; they form one fleet per garage, the garage where the car charged most
(ties: the garage first in alphabetical order). Residents with a charge point
of their own keep their vehicle outside any fleet, even when they sometimes
used a shared one. A missing plug-out time (``NA``, 34 sessions at the end of
the data) leaves the stop empty and flags the session ``stop_time_missing``.
"""

from collections import Counter, defaultdict
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

FORMAT = "trondheim"
RANK = 1
DEFAULT_TIME_ZONE = "Europe/Oslo"
COLUMNS = (
    "session_ID",
    "Garage_ID",
    "User_ID",
    "User_type",
    "Shared_ID",
    "Start_plugin",
    "End_plugout",
    "El_kWh",
)
_MISSING = {"", "NA"}
_TIME_FORMAT = "%d.%m.%Y %H:%M"


def sniff(head: str) -> bool:
    first = head.splitlines()[0] if head else ""
    names = [name.strip() for name in first.split(";")]
    return "session_ID" in names and "Garage_ID" in names


def parse(path: Path, *, label: str, time_zone: ZoneInfo | None = None) -> ParsedFile:
    zone = time_zone or ZoneInfo(DEFAULT_TIME_ZONE)
    total, rows = csv_rows(text_read(path), required=COLUMNS, delimiter=";")
    # A shared car's fleet depends on all of its sessions: read the file first.
    rows = list(rows)
    homes = _shared_car_homes([r for r in rows if not isinstance(r, RowError)])
    return ParsedFile(total, _records(rows, label=label, zone=zone, homes=homes))


def site_spec(garage: str, zone: ZoneInfo) -> SiteSpec:
    return SiteSpec(
        code=f"trondheim-{slugify(garage)}",
        name=f"Trondheim garage {garage}",
        time_zone=zone.key,
        address="Trondheim, Norway",
    )


def _shared_car_homes(rows: list[CsvRow]) -> dict[str, str]:
    """User_ID -> home garage, for users who never used a private charge point."""
    private = set()
    shared: dict[str, Counter] = defaultdict(Counter)
    for row in rows:
        user = row.values["User_ID"].strip()
        kind = row.values["User_type"].strip().lower()
        if kind == "private":
            private.add(user)
        elif kind == "shared":
            shared[user][row.values["Garage_ID"].strip()] += 1
    return {
        user: min(garages, key=lambda g: (-garages[g], g))
        for user, garages in shared.items()
        if user not in private
    }


def _records(
    rows: list[CsvRow | RowError],
    *,
    label: str,
    zone: ZoneInfo,
    homes: dict[str, str],
) -> Iterator[SessionRecord | RowError]:
    for row in rows:
        if isinstance(row, RowError):
            yield RowError(label, row.line, row.message)
            continue
        try:
            yield _record(row, zone=zone, homes=homes)
        except RowRejected as exc:
            yield RowError(label, row.line, str(exc))


def _record(row: CsvRow, *, zone: ZoneInfo, homes: dict[str, str]) -> SessionRecord:
    values = {name: value.strip() for name, value in row.values.items()}
    for name in ("session_ID", "Garage_ID", "User_ID", "Start_plugin", "El_kWh"):
        if values[name] in _MISSING:
            raise RowRejected(f"{name} is empty")
    garage, user = values["Garage_ID"], values["User_ID"]
    site = site_spec(garage, zone)
    kind = values["User_type"].lower()
    if kind == "private":
        charge_point = f"{site.code}-{user}"
    elif kind == "shared":
        if values["Shared_ID"] in _MISSING:
            raise RowRejected("a Shared session without Shared_ID")
        charge_point = f"{site.code}-{values['Shared_ID']}"
    else:
        raise RowRejected(
            f"User_type is neither Private nor Shared: {values['User_type']!r}"
        )

    started_at, flags = local_to_utc(
        _local(values["Start_plugin"], "Start_plugin"), zone
    )
    stopped_at = None
    if values["End_plugout"] in _MISSING:
        flags.append("stop_time_missing")
    else:
        stopped_at, stop_flags = local_to_utc(
            _local(values["End_plugout"], "End_plugout"), zone
        )
        flags += [flag for flag in stop_flags if flag not in flags]
    stop_check(started_at, stopped_at)
    energy_wh = kwh_to_wh(values["El_kWh"].replace(",", "."), name="El_kWh")

    home = homes.get(user)
    fleet = None
    if home is not None:
        fleet = FleetSpec(
            name=f"Trondheim {home} shared cars",
            site=site_spec(home, zone),
            description="Cars that charged only on the shared charge points of "
            f"garage {home} (Trondheim residential data set).",
        )
    return SessionRecord(
        external_id=f"trondheim:{values['session_ID']}",
        site=site,
        charge_point_identity=charge_point,
        started_at=started_at,
        stopped_at=stopped_at,
        energy_wh=energy_wh,
        line=row.line,
        raw_start_timestamp=values["Start_plugin"],
        raw_stop_timestamp=""
        if values["End_plugout"] in _MISSING
        else values["End_plugout"],
        user=UserSpec(
            token_value=f"TRD-{user}",
            vehicle_external_id=f"trondheim:user:{user}",
            vehicle_name=f"Trondheim user {user}",
            owner=f"Trondheim data set user {user}",
            fleet=fleet,
        ),
        timestamp_zone_assumed=True,
        flags=flags,
    )


def _local(value: str, name: str) -> datetime:
    try:
        return datetime.strptime(value, _TIME_FORMAT)  # noqa: DTZ007 (local, see doc)
    except ValueError:
        raise RowRejected(f"{name} is not a dd.mm.yyyy HH:MM time: {value!r}") from None
