"""Import the ACN-Data folder into a fresh database; print sessions/s and peak memory.

    .venv/bin/python bench/import_speed.py                      # embedded SQLite
    .venv/bin/python bench/import_speed.py \\
        --database-url postgres://postgres@127.0.0.1:5432/test   # PostgreSQL

SQLite: a new database file in a temporary folder, set up as the embedded
default (WAL). PostgreSQL: a new database ``giu_bench_<pid>`` is created on the
server of the URL and dropped at the end. The folder is imported twice: the
first run creates everything, the second shows the cost of a no-op re-import.
Memory is the process's peak resident set size (``ru_maxrss``), before the
import (Django loaded) and after it. The CPU time of this process is printed
too: on a busy machine it moves less than the wall-clock time.
"""

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO_DIR.parent / "shared" / "data" / "acn-data-caltech-jpl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument(
        "--database-url", default="", help="PostgreSQL server to bench on."
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="giu-bench-") as var_dir:
        os.environ["GIU_VAR_DIR"] = var_dir
        os.environ.pop("DATABASE_URL", None)
        drop = None
        if args.database_url:
            os.environ["DATABASE_URL"], drop = _postgres_database_create(
                args.database_url
            )
        try:
            _run(args.data, backend="PostgreSQL" if drop else "SQLite (embedded)")
        finally:
            if drop:
                drop()


def _run(data: Path, *, backend: str) -> None:
    sys.path.insert(0, str(REPO_DIR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "giu_ev.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from sessions.importers.runner import sessions_import

    call_command("migrate", verbosity=0)
    rss_before_mb = _peak_rss_mb()

    for label in ("first import", "re-import"):
        started, cpu_started = time.perf_counter(), time.process_time()
        report = sessions_import(path=data)
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
        total = report.total
        print(
            f"{backend}, {label}: {len([f for f in report.files if f.format])} files, "
            f"{total.read} sessions read ({total.created} created, {total.updated} "
            f"updated, {total.unchanged} unchanged, {total.rejected} rejected) in "
            f"{seconds:.2f} s = {total.read / seconds:,.0f} sessions/s "
            f"(this process's CPU time {cpu_seconds:.2f} s)"
        )
    print(
        f"peak RSS {_peak_rss_mb():.0f} MB (process with Django loaded, before the "
        f"import: {rss_before_mb:.0f} MB)"
    )
    from django.db import connections

    connections.close_all()


def _peak_rss_mb() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _postgres_database_create(url: str):
    """Create a fresh database beside the one in ``url``: its URL and a dropper."""
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    name = f"giu_bench_{os.getpid()}"
    parts = urlsplit(url)
    admin_url = urlunsplit(parts._replace(scheme="postgresql"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return urlunsplit(parts._replace(path=f"/{name}")), drop


if __name__ == "__main__":
    main()
