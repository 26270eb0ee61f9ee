"""Shared parts of the importers: the records parsers yield, row errors, summaries.

A parser turns one file into ``SessionRecord`` objects (plain values: aware UTC
datetimes, Wh) and ``RowError`` objects for rows it had to skip. The writer
(``sessions.importers.writer``) turns records into rows. Parsers never touch
the database, so they can be tested and timed on their own.
"""

import csv
import gzip
import io
import itertools
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from zoneinfo import ZoneInfo

# OCPP 1.6 idTag is a CiString20Type; IdToken.value has the same length.
TOKEN_MAX_LENGTH = 20


class FileUnreadable(Exception):
    """The file as a whole cannot be imported (not gzip, not JSON, columns missing)."""


class RowRejected(ValueError):
    """One row cannot be imported; the message says why, for the operator."""


@dataclass(frozen=True, slots=True)
class SiteSpec:
    code: str
    name: str
    time_zone: str
    address: str = ""
    latitude: Decimal | None = None
    longitude: Decimal | None = None
    grid_capacity_kw: Decimal | None = None


@dataclass(frozen=True, slots=True)
class FleetSpec:
    name: str
    site: SiteSpec | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class UserSpec:
    """A pseudonymous driver of a data set: one IdToken (kind imported), one Vehicle."""

    token_value: str
    vehicle_external_id: str
    vehicle_name: str
    owner: str = ""
    fleet: FleetSpec | None = None

    def __post_init__(self) -> None:
        if not 0 < len(self.token_value) <= TOKEN_MAX_LENGTH:
            raise RowRejected(
                f"user token {self.token_value!r} does not fit an OCPP idTag "
                f"({TOKEN_MAX_LENGTH} characters)"
            )


@dataclass(slots=True)
class SessionRecord:
    external_id: str
    site: SiteSpec
    charge_point_identity: str
    started_at: datetime
    stopped_at: datetime | None
    energy_wh: int
    line: int
    raw_start_timestamp: str = ""
    raw_stop_timestamp: str = ""
    user: UserSpec | None = None
    done_charging_at: datetime | None = None
    requested_energy_wh: int | None = None
    requested_departure_at: datetime | None = None
    timestamp_zone_assumed: bool = False
    flags: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RowError:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass(slots=True)
class ParsedFile:
    """What a parser hands the runner: the row count (if known) and the items."""

    total: int | None
    items: Iterator[SessionRecord | RowError]


@dataclass(slots=True)
class FileSummary:
    """Counts for one file, as printed by the command."""

    label: str
    format: str = ""
    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    sites_created: int = 0
    charge_points_created: int = 0
    fleets_created: int = 0
    vehicles_created: int = 0
    tokens_created: int = 0
    errors: list[RowError] = field(default_factory=list)
    failure: str = ""
    skipped: str = ""

    COUNTS = (
        "read",
        "created",
        "updated",
        "unchanged",
        "rejected",
        "sites_created",
        "charge_points_created",
        "fleets_created",
        "vehicles_created",
        "tokens_created",
    )

    def add(self, other: "FileSummary") -> None:
        for name in self.COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def line(self) -> str:
        text = (
            f"read {self.read}, created {self.created}, updated {self.updated}, "
            f"unchanged {self.unchanged}, rejected {self.rejected}"
        )
        assets = [
            (self.sites_created, "sites"),
            (self.charge_points_created, "charge points"),
            (self.fleets_created, "fleets"),
            (self.vehicles_created, "vehicles"),
            (self.tokens_created, "tokens"),
        ]
        new = ", ".join(f"{name} {count}" for count, name in assets if count)
        return f"{text}; new: {new}" if new else text


# --- Reading files -------------------------------------------------------------


def text_read(path: Path, *, encoding: str = "utf-8-sig") -> str:
    """The whole file as text, gunzipped when it is gzip (by content, not name)."""
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        return raw.decode(encoding)
    except (OSError, EOFError, zlib.error) as exc:
        raise FileUnreadable(f"cannot read the file: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise FileUnreadable(f"not {encoding} text: {exc}") from exc


def head_read(path: Path, size: int = 4096) -> str:
    """The first characters of a file (gunzipped), for format detection."""
    try:
        with path.open("rb") as fh:
            start = fh.read(2)
            fh.seek(0)
            if start == b"\x1f\x8b":
                with gzip.GzipFile(fileobj=fh) as gz:
                    raw = gz.read(size)
            else:
                raw = fh.read(size)
    except (OSError, EOFError, zlib.error) as exc:
        raise FileUnreadable(f"cannot read the file: {exc}") from exc
    return raw.decode("utf-8", errors="replace").lstrip("\ufeff")


@dataclass(slots=True)
class CsvRow:
    line: int
    values: dict[str, str]


# Said of a row whose quoted field is not closed on its own line. None of the
# data sets read here has a free-text column, so a line break inside a field is
# never meant: it is a stray quote, and reading on would swallow the rows after.
UNTERMINATED_QUOTE = (
    'unterminated quote: a field opens with " and is not closed on this line; '
    "the row is skipped and the next line is read as a new row"
)
# What the csv module (strict) says at the end of the text inside a quoted field.
_CSV_END_IN_QUOTES = "unexpected end of data"


def csv_rows(
    text: str, *, required: tuple[str, ...], delimiter: str = ","
) -> tuple[int, Iterator[CsvRow | RowError]]:
    """Rows of a CSV text as dicts, each with the line it starts on.

    Returns the number of data lines (for a progress bar) and the row iterator.
    Rows with the wrong number of fields, bad quoting or a quote left open come
    out as ``RowError`` (file name filled in by the caller). A row is one line:
    a quoted field that runs past the end of its line is reported as an
    unterminated quote and reading starts again on the next line, so one stray
    quote costs one row, not the rest of the file. A header without the
    required columns makes the file unreadable.
    """
    # The lines as the csv module splits them (\n, \r\n or \r), kept so that
    # reading can start again after a row that ran over several of them.
    lines = io.StringIO(text, newline="").readlines()
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise FileUnreadable("the file is empty") from None
    except csv.Error as exc:
        raise FileUnreadable(f"the header cannot be read: {exc}") from exc
    if reader.line_num > 1:
        raise FileUnreadable(f"the header cannot be read: {UNTERMINATED_QUOTE}")
    missing = [name for name in required if name not in header]
    if missing:
        raise FileUnreadable(f"columns missing: {', '.join(missing)}")
    total = max(text.count("\n") - 1, 0)

    def rows() -> Iterator[CsvRow | RowError]:
        current, offset = reader, 0  # offset: lines before the current reader
        while True:
            start = offset + current.line_num  # index of the row's first line
            error = ""
            try:
                values = next(current)
            except StopIteration:
                return
            except csv.Error as exc:
                error = str(exc)
            if offset + current.line_num - start > 1:
                yield RowError("", start + 1, UNTERMINATED_QUOTE)
                offset = start + 1
                current = csv.reader(
                    itertools.islice(lines, offset, None),
                    delimiter=delimiter,
                    strict=True,
                )
                continue
            if error:
                reason = (
                    UNTERMINATED_QUOTE
                    if error == _CSV_END_IN_QUOTES
                    else f"not valid CSV: {error}"
                )
                yield RowError("", start + 1, reason)
                continue
            if not values or values == [""]:
                continue
            if len(values) != len(header):
                yield RowError(
                    "",
                    start + 1,
                    f"expected {len(header)} fields, found {len(values)}",
                )
                continue
            yield CsvRow(start + 1, dict(zip(header, values, strict=True)))

    return total, rows()


# --- Values ----------------------------------------------------------------------

_WH_PER_KWH = Decimal(1000)


def kwh_to_wh(value: str | Decimal | int | float, *, name: str) -> int:
    """Energy in kWh as written in a file to whole Wh (half up), rejecting nonsense."""
    try:
        kwh = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise RowRejected(f"{name} is not a number: {value!r}") from None
    if not kwh.is_finite():
        raise RowRejected(f"{name} is not a number: {value!r}")
    if kwh < 0:
        raise RowRejected(f"{name} is negative: {value!r}")
    return int((kwh * _WH_PER_KWH).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def iso_to_utc(value: str, *, name: str) -> datetime:
    """An ISO-8601 time with a UTC offset (as the ACN CSV writes them) to UTC."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise RowRejected(f"{name} is not a date and time: {value!r}") from None
    if parsed.tzinfo is None:
        raise RowRejected(f"{name} has no UTC offset: {value!r}")
    return parsed.astimezone(UTC)


def local_to_utc(naive: datetime, zone: ZoneInfo) -> tuple[datetime, list[str]]:
    """A wall-clock time in ``zone`` to UTC, with a flag when the clock was odd.

    At the autumn change a wall-clock hour happens twice; the first (summer
    time) is taken and the session flagged ``ambiguous_local_time``. In the
    spring gap the time never existed; it is read with the offset before the
    change and flagged ``nonexistent_local_time``.
    """
    aware = naive.replace(tzinfo=zone)
    utc = aware.astimezone(UTC)
    if utc.astimezone(zone).replace(tzinfo=None) != naive:
        return utc, ["nonexistent_local_time"]
    if aware.utcoffset() != naive.replace(tzinfo=zone, fold=1).utcoffset():
        return utc, ["ambiguous_local_time"]
    return utc, []


def stop_check(started_at: datetime, stopped_at: datetime | None) -> None:
    if stopped_at is not None and stopped_at < started_at:
        raise RowRejected(
            f"stops before it starts ({stopped_at.isoformat()} < "
            f"{started_at.isoformat()})"
        )
