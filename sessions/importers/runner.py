"""Import a file or a folder of session data sets: find files, detect, parse, write."""

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TextIO
from zoneinfo import ZoneInfo

from django.db import DatabaseError
from tqdm import tqdm

from sessions.importers import acn_csv, acn_json, trondheim, workplace
from sessions.importers.base import (
    FileSummary,
    FileUnreadable,
    RowError,
    SessionRecord,
    head_read,
)
from sessions.importers.writer import SessionWriter, SourceFile

logger = logging.getLogger(__name__)

PARSERS: dict[str, ModuleType] = {
    module.FORMAT: module for module in (acn_csv, acn_json, trondheim, workplace)
}
FORMATS = ("auto", *PARSERS)
SUFFIXES = {
    "acn-csv": (".csv", ".csv.gz"),
    "acn-json": (".json", ".json.gz"),
    "trondheim": (".csv", ".csv.gz"),
    "workplace": (".csv", ".csv.gz"),
}
# One transaction and one round of lookups per batch. 900 keeps a batch's IN
# lists under 999 bound parameters, the limit of SQLite builds before 3.32;
# larger batches (5,000) were not faster on the ACN folder (bench/import_speed.py).
BATCH_SIZE = 900
CHARGE_POINT_IDENTITY_MAX_LENGTH = 48
EXTERNAL_ID_MAX_LENGTH = 200


@dataclass
class ImportReport:
    files: list[FileSummary] = field(default_factory=list)
    total: FileSummary = field(default_factory=lambda: FileSummary(label="total"))

    @property
    def failed(self) -> list[FileSummary]:
        return [f for f in self.files if f.failure]


def files_collect(path: Path) -> list[Path]:
    """The files to import: ``path`` itself, or every file under it (sorted)."""
    if not path.is_dir():
        return [path]
    return sorted(
        p
        for p in path.rglob("*")
        if p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )


def format_detect(path: Path) -> str | None:
    """The format of a file from its first lines, or None if it is none of ours."""
    if not path.name.lower().endswith(tuple(s for v in SUFFIXES.values() for s in v)):
        return None
    head = head_read(path)
    for name, module in PARSERS.items():
        if module.sniff(head):
            return name
    return None


def sessions_import(
    *,
    path: Path,
    format: str = "auto",
    time_zone: ZoneInfo | None = None,
    progress: TextIO | None = None,
    on_file_done: Callable[[FileSummary], None] | None = None,
) -> ImportReport:
    """Import every session file at ``path``; bad rows are skipped and reported.

    ``time_zone`` is the zone of files whose times carry none (Trondheim,
    workplace); each parser has its documented default. A file that cannot be
    read at all is reported in ``ImportReport.failed`` and the others still load.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}")
    if not path.exists():
        raise FileNotFoundError(path)
    single = not path.is_dir()
    writer = SessionWriter(ranks={name: m.RANK for name, m in PARSERS.items()})
    report = ImportReport()

    for file in files_collect(path):
        summary = _file_import(
            file,
            format=format,
            single=single,
            time_zone=time_zone,
            writer=writer,
            progress=progress,
        )
        report.files.append(summary)
        report.total.add(summary)
        if on_file_done:
            on_file_done(summary)
    return report


def _file_import(
    file: Path,
    *,
    format: str,
    single: bool,
    time_zone: ZoneInfo | None,
    writer: SessionWriter,
    progress: TextIO | None,
) -> FileSummary:
    summary = FileSummary(label=str(file))
    try:
        name = _format_choose(file, format=format, single=single)
    except FileUnreadable as exc:
        summary.failure = str(exc)
        return summary
    if name is None:
        if single:
            summary.failure = (
                "not a session file of a known format (choose one with --format)"
            )
        else:
            summary.skipped = "not a session file of a known format"
        return summary

    summary.format = name
    parser = PARSERS[name]
    source = SourceFile(
        format=name, rank=parser.RANK, file=f"{file.parent.name}/{file.name}"
    )
    try:
        parsed = parser.parse(file, label=str(file), time_zone=time_zone)
        with tqdm(
            total=parsed.total,
            desc=file.name,
            unit=" rows",
            file=progress,
            disable=progress is None,
            dynamic_ncols=True,
        ) as bar:
            _items_write(parsed.items, writer, source, summary, bar)
    except FileUnreadable as exc:
        summary.failure = str(exc)
    except DatabaseError as exc:
        # A row the parsers let through and the database refused: the batch is
        # rolled back, earlier batches stay, and the file is reported as failed.
        summary.failure = f"the database refused a batch: {exc}"
        logger.exception("Import of %s stopped", file, extra={"import_file": str(file)})

    extra = {"import_file": str(file), "import_format": name}
    if summary.failure:
        logger.warning("Import of %s failed: %s", file, summary.failure, extra=extra)
    elif summary.rejected:
        logger.warning(
            "Import of %s skipped %s bad rows", file, summary.rejected, extra=extra
        )
    logger.debug("Imported %s (%s): %s", file, name, summary.line(), extra=extra)
    return summary


def _format_choose(file: Path, *, format: str, single: bool) -> str | None:
    if format == "auto":
        return format_detect(file)
    if single or file.name.lower().endswith(SUFFIXES[format]):
        return format
    return None


def _items_write(
    items: Iterable[SessionRecord | RowError],
    writer: SessionWriter,
    source: SourceFile,
    summary: FileSummary,
    bar: tqdm,
) -> None:
    seen: dict[str, int] = {}
    batch: list[SessionRecord] = []

    def flush() -> None:
        if batch:
            writer.batch_write(batch, source=source, summary=summary)
            bar.update(len(batch))
            batch.clear()

    for item in items:
        summary.read += 1
        error = (
            item
            if isinstance(item, RowError)
            else _record_check(item, seen, label=summary.label)
        )
        if error:
            summary.rejected += 1
            summary.errors.append(error)
            bar.update(1)
            continue
        seen[item.external_id] = item.line
        batch.append(item)
        if len(batch) >= BATCH_SIZE:
            flush()
    flush()


def _record_check(
    record: SessionRecord, seen: dict[str, int], *, label: str
) -> RowError | None:
    """Checks the parsers leave to the end: duplicates and what columns can hold."""
    if record.external_id in seen:
        message = (
            f"session {record.external_id!r} already read on line "
            f"{seen[record.external_id]}"
        )
    elif len(record.charge_point_identity) > CHARGE_POINT_IDENTITY_MAX_LENGTH:
        message = f"charge point id {record.charge_point_identity!r} is too long"
    elif len(record.external_id) > EXTERNAL_ID_MAX_LENGTH:
        message = f"session id {record.external_id!r} is too long"
    else:
        return None
    return RowError(label, record.line, message)
