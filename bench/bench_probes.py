"""How long /readyz and a /metrics scrape take; prints figures.

    .venv/bin/python bench/bench_probes.py [--chargers 1000]

Runs on a throw-away SQLite database (GIU_VAR_DIR in a temporary folder) or on
DATABASE_URL if set, with a private redis-server on a free port for /readyz:
up, then stopped.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_DIR))


def timed(call, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chargers", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    os.environ.setdefault("GIU_VAR_DIR", tempfile.mkdtemp(prefix="giu-bench-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "giu_ev.settings")
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client, override_settings
    from django.utils import timezone

    from stations.models import ChargePoint, Connector, Site
    from tests.giu_ev.servers import redis_server

    call_command("migrate", verbosity=0)
    now = timezone.now()
    sites = [
        Site.objects.create(code=f"bench-{n}", name=f"Bench {n}") for n in range(10)
    ]
    points = ChargePoint.objects.bulk_create(
        ChargePoint(
            identity=f"B-{n}",
            site=sites[n % len(sites)],
            status="Available",
            is_connected=n % 7 != 0,
            last_seen_at=now,
        )
        for n in range(args.chargers)
    )
    Connector.objects.bulk_create(
        Connector(
            charge_point=cp,
            number=k,
            status="Faulted" if n % 50 == 0 else "Available",
            status_updated_at=now,
        )
        for n, cp in enumerate(points)
        for k in (1, 2)
    )
    client = Client(HTTP_HOST="10.0.0.1:8000")

    scrape = timed(lambda: client.get("/metrics"), args.repeat)
    size = len(client.get("/metrics").content)
    print(
        f"/metrics with {args.chargers} chargers, {2 * args.chargers} connectors: "
        f"median {statistics.median(scrape):.1f} ms, max {max(scrape):.1f} ms, "
        f"{size / 1024:.0f} KiB"
    )

    with redis_server() as (process, url):
        redis_settings = {
            "REDIS_URL": url,
            "CELERY_BROKER_URL": url,
            "CELERY_TASK_ALWAYS_EAGER": False,
            "CHANNEL_LAYERS": {
                "default": {
                    "BACKEND": "channels_redis.core.RedisChannelLayer",
                    "CONFIG": {
                        "hosts": [{"address": url, "socket_connect_timeout": 0.5}]
                    },
                }
            },
        }
        with override_settings(**redis_settings):
            up = timed(lambda: client.get("/readyz?skip=celery_worker"), args.repeat)
            no_worker = timed(lambda: client.get("/readyz"), 3)
            process.terminate()
            process.wait(timeout=10)
            down = timed(lambda: client.get("/readyz"), args.repeat)
    print(f"/readyz, Redis up (worker skipped): median {statistics.median(up):.1f} ms")
    print(
        "/readyz, Redis up, no worker: "
        f"median {statistics.median(no_worker):.0f} ms (503)"
    )
    print(
        f"/readyz, Redis stopped: median {statistics.median(down):.1f} ms, "
        f"max {max(down):.1f} ms (503)"
    )


if __name__ == "__main__":
    main()
