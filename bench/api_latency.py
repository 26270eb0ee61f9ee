"""API latency under concurrent clients, on the production serving set-up.

Prints requests/s and p50/p95/p99 per endpoint for N concurrent clients on:
the session list, one session's meter samples (cursor pages) and fleet
insights. Run it against a PostgreSQL database holding the imported ACN data
and a million meter samples:

    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_api
    export REDIS_URL=redis://127.0.0.1:6379/4
    python manage.py migrate
    python manage.py import_sessions ../shared/data/acn-data-caltech-jpl
    python bench/meter_samples_load.py --total 1000000
    python manage.py train_forecasts && python manage.py predict_forecasts
    python bench/api_latency.py --clients 50 --seconds 30

The script starts the server itself, as docs/api.md documents it for
production, and stops it at the end:

- ``gunicorn`` (default): the ``http`` role of docker/entrypoint.sh, gunicorn
  with deploy/gunicorn.conf.py: sync workers on the WSGI app, ``--workers`` of
  them (HTTP_WORKERS; default two per CPU), counters summed across workers for
  /metrics. Each worker serves one request at a time; the kernel queues the
  rest on the shared socket.
- ``gthread``: the same with GUNICORN_WORKER_CLASS=gthread, ``--threads`` each.
- ``uvicorn``: gunicorn with two uvicorn workers on the ASGI app (Django runs
  each sync view on one thread per process).
- ``daphne``: one Daphne process, the embedded default, for reference.

The clients: ``wrk`` (Debian package ``wrk``) when it is installed, one wrk
process per endpoint with its share of the ``--clients`` connections, each
connection sending its next request as soon as the answer is in (a closed
loop), cycling through the endpoint's URLs. wrk costs a few microseconds of CPU
per request, so nearly all of the machine is left to the server. Without wrk,
Python threads with one kept-alive connection each do the same, at a much
higher cost in client CPU (shared with the server on one machine). Every
request carries a read-only API key and ``X-Forwarded-Proto: https``, as the
documented proxy sends. Rate limits stay on (counted in Redis) with limits
high enough not to refuse the benchmark's own traffic.
"""

import argparse
import http.client
import json
import multiprocessing as mp
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "giu_ev.settings")

ENDPOINTS = ("sessions", "meter_samples", "fleet_insights")


def _setup_django():
    import django

    django.setup()


def prepare(session_pages: int, sample_sessions: int) -> tuple[str, dict]:
    """Check the data, make a read-only key, and list the URLs to request."""
    _setup_django()
    from django.db import connection

    from api_access.models import ApiKey, ApiKeyScope
    from sessions.models import ChargingSession, MeterSample
    from stations.models import Site

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
    sites = list(Site.objects.order_by("code").values_list("code", flat=True))
    # Half the session-list requests page through the whole list, half through
    # one site's sessions (what a script watching one site asks).
    session_urls = [
        f"/api/sessions/?page={page}&page_size=50"
        for page in range(1, session_pages + 1)
    ] + [
        f"/api/sessions/?site={site}&page={page}&page_size=50"
        for site in sites
        for page in range(1, session_pages // len(sites) + 1)
    ]
    urls = {
        "sessions": session_urls,
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


def server_command(kind: str, port: int) -> list[str]:
    bin_dir = Path(sys.executable).parent
    if kind in {"gunicorn", "gthread"}:
        # Exactly what docker/entrypoint.sh's http role runs; workers, worker
        # class and port come from the environment (server_environment).
        return [
            str(bin_dir / "gunicorn"),
            "--config",
            "deploy/gunicorn.conf.py",
            "giu_ev.wsgi:application",
        ]
    if kind == "uvicorn":
        return [
            str(bin_dir / "gunicorn"),
            f"--bind=127.0.0.1:{port}",
            "--workers=2",
            "--worker-class=uvicorn.workers.UvicornWorker",
            "giu_ev.asgi:application",
        ]
    if kind == "daphne":
        return [
            str(bin_dir / "daphne"),
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "giu_ev.asgi:application",
        ]
    raise ValueError(kind)


def server_environment(kind: str, port: int, workers: int, threads: int) -> dict:
    env = {
        **os.environ,
        # High enough for the benchmark's own traffic, low enough to be counted.
        "API_RATE_PER_KEY": "10000000/m",
        "API_RATE_PER_ADDRESS": "10000000/m",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
        "PORT": str(port),
        "HTTP_WORKERS": str(workers),
    }
    if kind == "gthread":
        env.update(GUNICORN_WORKER_CLASS="gthread", GUNICORN_THREADS=str(threads))
    return env


def server_start(kind: str, port: int, workers: int, threads: int, log: Path):
    """Start the server; with gunicorn, return once every worker has loaded
    Django (a few CPU seconds each, while the master already accepts)."""
    env = server_environment(kind, port, workers, threads)
    if kind in {"gunicorn", "gthread"}:
        # INFO for gunicorn's own "Worker ready" lines (deploy/gunicorn.conf.py).
        env["LOG_LEVEL"] = "INFO"
    with log.open("ab") as out:
        process = subprocess.Popen(
            server_command(kind, port),
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{kind} exited with {process.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                pass
        except OSError:
            time.sleep(0.3)
            continue
        if kind not in {"gunicorn", "gthread"}:
            return process
        if log.read_text(errors="replace").count("Worker ready") >= workers:
            return process
        time.sleep(0.3)
    server_stop(process)
    sys.exit(f"{kind} did not get ready on {port}:\n{log.read_text()[-3000:]}")


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


def process_cpu_s(root_pid: int) -> float:
    """CPU seconds used so far by a process and its children (the workers)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        # fields[2] is the parent pid, [11] utime, [12] stime (after the name).
        if pid == root_pid or int(fields[1]) == root_pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


# --- Clients: wrk ---------------------------------------------------------------

WRK_SCRIPT = """
local paths = {%(paths)s}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", paths[(n %% #paths) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %%d %%d %%d %%d\\n", summary.requests,
    summary.duration, e.status, e.connect + e.read + e.write + e.timeout))
  for q = 1, 999 do
    io.write(string.format("Q %%d\\n", latency:percentile(q / 10)))
  end
end
"""


def _wrk_shares(clients: int) -> dict[str, int]:
    base, extra = divmod(clients, len(ENDPOINTS))
    return {name: base + (1 if i < extra else 0) for i, name in enumerate(ENDPOINTS)}


def _wrk_run(base, key, urls, clients, seconds, folder) -> dict:
    procs = {}
    for name, connections in _wrk_shares(clients).items():
        if not connections:
            continue
        script = Path(folder) / f"{name}.lua"
        paths = ", ".join(json.dumps(url) for url in urls[name])
        script.write_text(WRK_SCRIPT % {"paths": paths})
        procs[name] = subprocess.Popen(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout=30s",
                "-s",
                str(script),
                "-H",
                f"Authorization: Api-Key {key}",
                "-H",
                "X-Forwarded-Proto: https",
                base + "/",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
    results = {}
    for name, proc in procs.items():
        out, _ = proc.communicate()
        quantiles = []
        for line in out.splitlines():
            if line.startswith("RESULT "):
                requests, duration_us, bad_status, socket_errors = map(
                    int, line.split()[1:]
                )
            elif line.startswith("Q "):
                quantiles.append(int(line.split()[1]) / 1e6)
        results[name] = {
            "requests": requests,
            "seconds": duration_us / 1e6,
            "errors": bad_status + socket_errors,
            "quantiles": quantiles,
        }
    return results


# --- Clients: Python threads (without wrk) ----------------------------------------


def _client_thread(base, key, urls, stop_at, warm_until, out, errors, seed):
    rng = random.Random(seed)
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
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
            if response.getheader("Connection", "").lower() == "close":
                connection.close()
        except (OSError, http.client.HTTPException):
            connection.close()
            status = 0
        finished = time.monotonic()
        if started < warm_until:
            continue
        if status != 200:
            errors.append(name)
        else:
            out.append((name, finished - started))
    connection.close()


def _client_process(base, key, urls, threads, seconds, index, queue):
    out: list = []
    errors: list = []
    stop_at = time.monotonic() + seconds
    workers = [
        threading.Thread(
            target=_client_thread,
            args=(base, key, urls, stop_at, 0, out, errors, index * 1000 + n),
        )
        for n in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    queue.put((out, errors))


def _threads_run(base, key, urls, clients, seconds, client_procs) -> dict:
    queue: mp.Queue = mp.Queue()
    per_proc = [
        clients // client_procs + (1 if n < clients % client_procs else 0)
        for n in range(client_procs)
    ]
    procs = [
        mp.Process(
            target=_client_process,
            args=(base, key, urls, count, seconds, n, queue),
        )
        for n, count in enumerate(per_proc)
        if count
    ]
    for p in procs:
        p.start()
    collected = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    results = {}
    for name in ENDPOINTS:
        times = sorted(t for out, _ in collected for n, t in out if n == name)
        errors = sum(1 for _, errs in collected for n in errs if n == name)
        quantiles = (
            [times[min(len(times) - 1, q * len(times) // 1000)] for q in range(1, 1000)]
            if times
            else []
        )
        results[name] = {
            "requests": len(times) + errors,
            "seconds": seconds,
            "errors": errors,
            "quantiles": quantiles,
        }
    return results


# --- One measurement ------------------------------------------------------------


def _quantile(quantiles: list[float], share: float) -> float:
    return quantiles[min(len(quantiles) - 1, round(share * 1000) - 1)]


def _merged(results: dict) -> list[float]:
    """Approximate quantiles of all requests: each endpoint's 999 quantile points
    weighted by its request count."""
    points = []
    for row in results.values():
        if row["quantiles"]:
            weight = row["requests"] / len(row["quantiles"])
            points += [(q, weight) for q in row["quantiles"]]
    points.sort()
    total = sum(w for _, w in points)
    merged, seen, index = [], 0.0, 0
    for q in range(1, 1000):
        target = total * q / 1000
        while index < len(points) - 1 and seen + points[index][1] < target:
            seen += points[index][1]
            index += 1
        merged.append(points[index][0])
    return merged


def run(kind, *, clients, seconds, warmup, workers, threads, key, urls, client, procs):
    port = free_port()
    folder = tempfile.mkdtemp(prefix="api-latency-")
    process = server_start(kind, port, workers, threads, Path(folder) / "server.log")
    base = f"http://127.0.0.1:{port}"
    try:
        if client == "wrk":
            _wrk_run(base, key, urls, clients, warmup, folder)
            cpu_before = process_cpu_s(process.pid)
            results = _wrk_run(base, key, urls, clients, seconds, folder)
        else:
            _threads_run(base, key, urls, clients, warmup, procs)
            cpu_before = process_cpu_s(process.pid)
            results = _threads_run(base, key, urls, clients, seconds, procs)
        server_cpu = process_cpu_s(process.pid) - cpu_before
    finally:
        server_stop(process)
        shutil.rmtree(folder, ignore_errors=True)

    label = {
        "gunicorn": f"gunicorn WSGI, {workers} sync workers",
        "gthread": f"gunicorn WSGI, {workers} workers x {threads} threads",
        "uvicorn": "gunicorn + 2 uvicorn workers (ASGI)",
        "daphne": "one Daphne process (ASGI)",
    }[kind]
    load = os.getloadavg()[0]
    print(
        f"\n{label}; {clients} concurrent clients ({client}), {seconds} s measured "
        f"after {warmup} s warm-up; load average {load:.1f}"
    )
    print(
        f"{'endpoint':<16}{'requests':>9}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}"
        f"{'p99 ms':>9}{'errors':>8}"
    )
    summary = {}
    all_requests = 0
    for name in ENDPOINTS:
        row = results.get(name)
        if not row or not row["quantiles"]:
            print(f"{name:<16}{0:>9}")
            continue
        all_requests += row["requests"]
        figures = {
            "requests": row["requests"],
            "rps": row["requests"] / row["seconds"],
            "p50_ms": _quantile(row["quantiles"], 0.50) * 1000,
            "p95_ms": _quantile(row["quantiles"], 0.95) * 1000,
            "p99_ms": _quantile(row["quantiles"], 0.99) * 1000,
            "errors": row["errors"],
        }
        summary[name] = figures
        print(
            f"{name:<16}{figures['requests']:>9}{figures['rps']:>8.1f}"
            f"{figures['p50_ms']:>9.1f}{figures['p95_ms']:>9.1f}"
            f"{figures['p99_ms']:>9.1f}{figures['errors']:>8}"
        )
    merged = _merged(results)
    if merged:
        summary["all"] = {
            "requests": all_requests,
            "rps": all_requests / seconds,
            "p50_ms": _quantile(merged, 0.50) * 1000,
            "p95_ms": _quantile(merged, 0.95) * 1000,
            "p99_ms": _quantile(merged, 0.99) * 1000,
            "server_cpu_ms_per_request": server_cpu * 1000 / max(1, all_requests),
        }
        row = summary["all"]
        print(
            f"{'all':<16}{row['requests']:>9}{row['rps']:>8.1f}{row['p50_ms']:>9.1f}"
            f"{row['p95_ms']:>9.1f}{row['p99_ms']:>9.1f}"
        )
        print(
            f"server processes: {server_cpu:.1f} CPU s, "
            f"{row['server_cpu_ms_per_request']:.2f} ms of CPU per request"
        )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--clients", type=int, action="append", help="Repeat for several runs."
    )
    parser.add_argument("--seconds", type=int, default=30)
    # Each worker imports Django and the ML stack on start and loads the URLs on
    # its first request: measure after that.
    parser.add_argument("--warmup", type=int, default=15)
    parser.add_argument(
        "--server",
        choices=["gunicorn", "gthread", "uvicorn", "daphne"],
        action="append",
        help="Serving set-up(s) to measure; default: gunicorn (sync workers).",
    )
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1))
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--client",
        choices=["wrk", "threads"],
        default="wrk" if shutil.which("wrk") else "threads",
    )
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument("--session-pages", type=int, default=20)
    parser.add_argument("--sample-sessions", type=int, default=200)
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args()

    key, urls = prepare(args.session_pages, args.sample_sessions)
    print(f"machine: {os.cpu_count()} CPUs; clients and server share them")
    figures = {}
    for kind in args.server or ["gunicorn"]:
        for clients in args.clients or [50]:
            figures[f"{kind}/{clients}"] = run(
                kind,
                clients=clients,
                seconds=args.seconds,
                warmup=args.warmup,
                workers=args.workers,
                threads=args.threads,
                key=key,
                urls=urls,
                client=args.client,
                procs=args.client_procs,
            )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
