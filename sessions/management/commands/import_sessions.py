"""Import charging sessions from public data set files (a file or a whole folder)."""

import sys
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sessions.importers.base import FileSummary
from sessions.importers.runner import FORMATS, sessions_import


class Command(BaseCommand):
    help = (
        "Import charging sessions from ACN-Data CSV/JSON, the Trondheim residential "
        "set or the workplace set. A folder imports every file in it. Bad rows are "
        "reported with file:line and skipped; importing a file again adds nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="A data file or a folder.")
        parser.add_argument(
            "--format",
            choices=FORMATS,
            default="auto",
            help="File format; 'auto' (default) tells each file by its first lines.",
        )
        parser.add_argument(
            "--timezone",
            dest="time_zone",
            metavar="ZONE",
            default=None,
            help="IANA zone of files whose times carry none (Trondheim default "
            "Europe/Oslo, workplace default UTC). ACN times carry offsets.",
        )
        parser.add_argument(
            "--no-progress",
            action="store_true",
            help="Do not draw the progress bar on stderr.",
        )

    def handle(
        self,
        *args,
        path: Path,
        format: str,
        time_zone: str | None,
        no_progress: bool,
        **options,
    ) -> None:
        zone = None
        if time_zone:
            try:
                zone = ZoneInfo(time_zone)
            except (ZoneInfoNotFoundError, ValueError):
                raise CommandError(
                    f"--timezone {time_zone!r} is not an IANA time zone name"
                ) from None
        if not path.exists():
            raise CommandError(f"{path} does not exist")

        report = sessions_import(
            path=path,
            format=format,
            time_zone=zone,
            # The stream itself, not self.stderr: OutputWrapper would end each
            # of tqdm's carriage-return redraws with a newline.
            progress=None if no_progress else options.get("stderr") or sys.stderr,
            on_file_done=self._file_report,
        )

        imported = [f for f in report.files if f.format]
        self.stdout.write(
            f"Total ({len(imported)} files): {report.total.line()}",
            style_func=self.style.SUCCESS if not report.failed else None,
        )
        if report.failed:
            raise CommandError(
                f"{len(report.failed)} file(s) could not be read: "
                + "; ".join(f"{f.label}: {f.failure}" for f in report.failed)
            )

    def _file_report(self, summary: FileSummary) -> None:
        if summary.skipped:
            self.stdout.write(f"{summary.label}: skipped, {summary.skipped}")
            return
        for error in summary.errors:
            self.stderr.write(str(error))
        if summary.failure:
            self.stderr.write(f"{summary.label}: cannot be imported: {summary.failure}")
        if summary.format:
            self.stdout.write(f"{summary.label} [{summary.format}]: {summary.line()}")
