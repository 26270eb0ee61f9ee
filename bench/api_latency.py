"""API latency under concurrent clients, on the production serving set-up.

Prints requests/s and p50/p95/p99 per endpoint for N concurrent clients on:
the session list, one session's meter samples (cursor pages) and fleet
insights. Run it against a PostgreSQL database holding the imported ACN data
and a million meter samples:

    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_api
    python manage.py migrate
    python manage.py import_sessions ../shared/data/acn-data-caltech-jpl
    python bench/meter_samples_load.py --total 1000000
    python manage.py predict_forecasts
    python bench/api_latency.py --clients 50 --seconds 30

The script starts the server itself, as docs/api.md documents it for
production, and stops it at the end:

- ``gunicorn`` (default): gunicorn serving the WSGI app with ``--workers``
  processes of ``--threads`` threads each. DRF views are synchronous; under
  WSGI each request runs on a worker thread with no async/sync hop.
- ``uvicorn``: gunicorn with uvicorn workers serving the ASGI app (the HTTP half
  of giu_ev.asgi; Django runs each sync view in a single thread per process).
- ``daphne``: one Daphne process, the embedded default, for reference.

The clients run in ``--client-procs`` processes of threads, each thread with
one kept-alive HTTP connection and an API key, picking the endpoints in turn.
Rate limits stay on (counted in Redis when REDIS_URL is set) with limits high
enough not to refuse the benchmark's own traffic.
"""

import argparse
import http.client
import json
import multiprocessing as mp
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "giu_ev.settings")


def _setup_django():
    import django

    django.setup()


def prepare(session_pages: int, sample_sessions: int) -> tuple[str, list[str]]:
    """Check the data, make a read-only key, and list the URLs to request."""
    _setup_django()
    from django.db import connection

    from api_access.models import ApiKey, ApiKeyScope
    from sessions.models import ChargingSession, MeterSample

    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL database (see the docstring).")
    sessions = ChargingSession.objects.count()
    samples = MeterSample.objects.count()
    print(f"database: {sessions:,} sessions, {samples:,} meter samples")
    if sessions == 0 or samples < 900_000:
        sys.exit("Import the ACN data and load a million meter samples first.")

    ApiKey.objects.filter(name="bench api_latency").delete()
    _, key = ApiKey.objects.create_key(
        name="bench api_latency", scope=ApiKeyScope.READ_ONLY
    )
    with_samples = list(
        MeterSample.objects.filter(session__isnull=False)
        .values_list("session_id", flat=True)
        .distinct()[: sample_sessions * 20]
    )
    random.seed(7)
    chosen = random.sample(with_samples, min(sample_sessions, len(with_samples)))
    urls = {
        "sessions": [
            f"/api/sessions/?page={page}&page_size=50"
            for page in range(1, session_pages + 1)
        ],
        "meter_samples": [
            f"/api/sessions/{pk}/meter-samples/?page_size=500" for pk in chosen
        ],
        "fleet_insights": ["/api/ml/fleet-insights/"],
    }
    return key, urls


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_start(kind: str, port: int, workers: int, threads: int):
    env = {
        **os.environ,
        # High enough for the benchmark's own traffic, low enough to be counted.
        "API_RATE_PER_KEY": "10000000/m",
        "API_RATE_PER_ADDRESS": "10000000/m",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
    }
    bind = f"127.0.0.1:{port}"
    bin_dir = Path(sys.executable).parent
    if kind == "gunicorn":
        command = [
            str(bin_dir / "gunicorn"),
            "giu_ev.wsgi:application",
            f"--bind={bind}",
            f"--workers={workers}",
            f"--threads={threads}",
            "--worker-class=gthread",
            # No --preload: forking after onnxruntime/XGBoost started their
            # thread pools aborts the workers (seen here: SIGABRT).
            "--keep-alive=30",
            "--log-level=warning",
        ]
    elif kind == "uvicorn":
        command = [
            str(bin_dir / "gunicorn"),
            "giu_ev.asgi:application",
            f"--bind={bind}",
            f"--workers={workers}",
            "--worker-class=uvicorn.workers.UvicornWorker",
            "--keep-alive=30",
            "--log-level=warning",
        ]
    elif kind == "daphne":
        command = [
            str(bin_dir / "daphne"),
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "giu_ev.asgi:application",
        ]
    else:
        raise ValueError(kind)
    process = subprocess.Popen(command, cwd=REPO, env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process
        except OSError:
            if process.poll() is not None:
                sys.exit(f"{kind} exited with {process.returncode}")
            time.sleep(0.3)
    server_stop(process)
    sys.exit(f"{kind} did not start listening on {port}")


def server_stop(process) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _client_thread(base, key, urls, stop_at, warm_until, out, errors, seed):
    rng = random.Random(seed)
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    # As the documented proxy does: TLS ends there, it says so in a header.
    headers = {
        "Authorization": f"Api-Key {key}",
        "Connection": "keep-alive",
        "X-Forwarded-Proto": "https",
    }
    names = list(urls)
    turn = seed
    while time.monotonic() < stop_at:
        name = names[turn % len(names)]
        turn += 1
        url = rng.choice(urls[name])
        started = time.monotonic()
        try:
            connection.request("GET", url, headers=headers)
            response = connection.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            connection.close()
            connection = http.client.HTTPConnection(
                parts.hostname, parts.port, timeout=60
            )
            status = 0
        finished = time.monotonic()
        if started < warm_until:
            continue
        if status != 200:
            errors.append((name, status))
        else:
            out.append((name, finished - started, finished))
    connection.close()


def _client_process(base, key, urls, threads, seconds, warmup, index, queue):
    out: list = []
    errors: list = []
    start = time.monotonic()
    warm_until = start + warmup
    stop_at = warm_until + seconds
    workers = [
        threading.Thread(
            target=_client_thread,
            args=(base, key, urls, stop_at, warm_until, out, errors, index * 1000 + n),
        )
        for n in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    queue.put((out, errors, warm_until, stop_at))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run(kind, *, clients, client_procs, seconds, warmup, workers, threads, key, urls):
    port = free_port()
    process = server_start(kind, port, workers, threads)
    try:
        base = f"http://127.0.0.1:{port}"
        queue: mp.Queue = mp.Queue()
        per_proc = [
            clients // client_procs + (1 if n < clients % client_procs else 0)
            for n in range(client_procs)
        ]
        procs = [
            mp.Process(
                target=_client_process,
                args=(base, key, urls, count, seconds, warmup, n, queue),
            )
            for n, count in enumerate(per_proc)
            if count
        ]
        for p in procs:
            p.start()
        results = [queue.get() for _ in procs]
        for p in procs:
            p.join()
    finally:
        server_stop(process)

    samples = [row for out, _, _, _ in results for row in out]
    errors = [row for _, errs, _, _ in results for row in errs]
    window = seconds
    label = {
        "gunicorn": f"gunicorn WSGI, {workers} workers x {threads} threads",
        "uvicorn": f"gunicorn + {workers} uvicorn workers (ASGI)",
        "daphne": "one Daphne process (ASGI)",
    }[kind]
    print(f"\n{label}; {clients} concurrent clients, {seconds} s measured")
    print(
        f"{'endpoint':<16}{'requests':>9}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}"
        f"{'p99 ms':>9}"
    )
    summary = {}
    for name in urls:
        times = [t for n, t, _ in samples if n == name]
        if not times:
            print(f"{name:<16}{0:>9}")
            continue
        row = {
            "requests": len(times),
            "rps": len(times) / window,
            "p50_ms": statistics.median(times) * 1000,
            "p95_ms": percentile(times, 0.95) * 1000,
            "p99_ms": percentile(times, 0.99) * 1000,
        }
        summary[name] = row
        print(
            f"{name:<16}{row['requests']:>9}{row['rps']:>8.1f}{row['p50_ms']:>9.1f}"
            f"{row['p95_ms']:>9.1f}{row['p99_ms']:>9.1f}"
        )
    all_times = [t for _, t, _ in samples]
    if all_times:
        print(
            f"{'all':<16}{len(all_times):>9}{len(all_times) / window:>8.1f}"
            f"{statistics.median(all_times) * 1000:>9.1f}"
            f"{percentile(all_times, 0.95) * 1000:>9.1f}"
            f"{percentile(all_times, 0.99) * 1000:>9.1f}"
        )
    if errors:
        by = {}
        for name, status in errors:
            by[(name, status)] = by.get((name, status), 0) + 1
        print(
            "non-200 answers:", ", ".join(f"{n} {s}: {c}" for (n, s), c in by.items())
        )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=30)
    # Each worker imports Django and the ML stack on start (about 13 s of CPU
    # here) and loads the URLs on its first request: measure after that.
    parser.add_argument("--warmup", type=int, default=60)
    parser.add_argument(
        "--server",
        choices=["gunicorn", "uvicorn", "daphne"],
        action="append",
        help="Serving set-up(s) to measure; default: gunicorn.",
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--session-pages", type=int, default=20)
    parser.add_argument("--sample-sessions", type=int, default=200)
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args()

    key, urls = prepare(args.session_pages, args.sample_sessions)
    print(f"machine: {os.cpu_count()} CPUs; clients and server share them")
    figures = {}
    for kind in args.server or ["gunicorn"]:
        figures[kind] = run(
            kind,
            clients=args.clients,
            client_procs=args.client_procs,
            seconds=args.seconds,
            warmup=args.warmup,
            workers=args.workers,
            threads=args.threads,
            key=key,
            urls=urls,
        )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
