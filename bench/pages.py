"""Time each operator page server-side on the current database.

Each page is requested through Django's test client (full middleware, view,
queries and template rendering; no network) ``--runs`` times after one warm-up
request, and the median is printed in milliseconds with the number of SQL
queries. The goal (issue 2) is under 300 ms per page with the ACN data imported
and a million meter samples (see bench/meter_samples_load.py).

    DATABASE_URL=postgres://... python bench/pages.py [--runs 7]
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "giu_ev.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import reverse  # noqa: E402

from sessions.models import ChargingSession, MeterSample  # noqa: E402
from stations.models import ChargePoint, Site  # noqa: E402

GOAL_MS = 300
BENCH_USER = "bench-operator"


def pages() -> list[tuple[str, str]]:
    """The pages to time, with real arguments taken from the database."""
    busiest = ChargePoint.objects.annotate(n=Count("sessions")).order_by("-n").first()
    newest = ChargingSession.objects.order_by("-started_at").first()
    # The session with the most samples: the heaviest session page.
    sampled = (
        MeterSample.objects.filter(session__isnull=False)
        .values("session_id")
        .annotate(n=Count("id"))
        .order_by("-n")
        .values_list("session_id", flat=True)
        .first()
    )
    unsampled = ChargingSession.objects.filter(meter_samples__isnull=True).first()
    site = Site.objects.first()
    session_list = reverse("session_list")
    last_page = ChargingSession.objects.count() // 50 + 1
    found = [
        ("dashboard", reverse("dashboard")),
        ("station list", reverse("station_list")),
        ("session list", session_list),
        ("session list, last page", f"{session_list}?page={last_page}"),
    ]
    if busiest:
        found.append(
            (
                f"station page ({busiest.identity})",
                reverse("station_detail", args=[busiest.identity]),
            )
        )
    if site and newest:
        day = newest.started_at.date()
        found.append(
            (
                "session list, site + month",
                f"{session_list}?site={site.code}"
                f"&date_from={day.replace(day=1)}&date_to={day}",
            )
        )
    if busiest:
        found.append(
            (
                "session list, charger",
                f"{session_list}?charge_point={busiest.identity}",
            )
        )
    if sampled:
        samples = MeterSample.objects.filter(session_id=sampled).count()
        found.append(
            (
                f"session page ({samples} samples)",
                reverse("session_detail", args=[sampled]),
            )
        )
    if unsampled:
        found.append(
            (
                "session page (no samples)",
                reverse("session_detail", args=[unsampled.pk]),
            )
        )
    return found


def time_page(client: Client, url: str, runs: int) -> tuple[float, float, int, int]:
    """Median wall-clock ms, median CPU ms of this process (Python: view and
    template; the database works in its own process), queries and bytes."""
    response = client.get(url)  # warm-up: template loading, first query plans
    if response.status_code != 200:
        raise SystemExit(f"{url} answered {response.status_code}")
    wall, cpu = [], []
    for _ in range(runs):
        with CaptureQueriesContext(connection) as queries:
            started, started_cpu = time.perf_counter(), time.process_time()
            response = client.get(url)
            if response.streaming:
                size = sum(len(part) for part in response.streaming_content)
            else:
                size = len(response.content)
            wall.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
    return statistics.median(wall), statistics.median(cpu), len(queries), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    user, _ = get_user_model().objects.get_or_create(username=BENCH_USER)
    client = Client(SERVER_NAME=(settings.ALLOWED_HOSTS or ["localhost"])[0])
    client.force_login(user)

    engine = connection.vendor
    print(
        f"database: {engine}; {ChargingSession.objects.count():,} sessions, "
        f"{ChargePoint.objects.count():,} charge points, "
        f"{MeterSample.objects.count():,} meter samples; median of {args.runs} runs"
    )
    print(f"load average before: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)")
    print(f"{'page':<42} {'ms':>8} {'cpu ms':>8} {'queries':>8} {'KiB':>7}")
    worst = 0.0
    rows = [
        *pages(),
        ("CSV export, all sessions (download)", reverse("session_export")),
    ]
    for name, url in rows:
        download = url == rows[-1][1]
        ms, cpu_ms, queries, size = time_page(
            client, url, max(3, args.runs // 2) if download else args.runs
        )
        if not download:
            worst = max(worst, ms)
        print(f"{name:<42} {ms:>8.1f} {cpu_ms:>8.1f} {queries:>8} {size / 1024:>7.0f}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    verdict = "within" if worst < GOAL_MS else "OVER"
    print(f"slowest page {worst:.1f} ms: {verdict} the {GOAL_MS} ms goal")


if __name__ == "__main__":
    main()
