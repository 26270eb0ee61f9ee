"""OCPP load benchmark: the portal (one Daphne process) against a bare central system.

N chargers (ocpp-rpc in a Node process, bench/loadgen.js) connect with their
passwords, boot, start a transaction and then send MeterValues at a set total
rate for a set time. The same load runs first against a bare `ocpp` +
`websockets` central system (bench/reference_server.py, no database), then
against one `daphne giu_ev.asgi:application` process on PostgreSQL with the
Redis channel layer, on this machine in this run. Printed for each: connections
held, MeterValues answered per second, p50/p99 answer latency, server memory
per connection and server CPU; for the portal also how many of the answered
frames are in the database afterwards.

    python bench/ocpp_load.py --chargers 5000 --rate 1000 --duration 30

The portal's database is created afresh (``--database``, default
giu_ev_bench_e2e, on the PostgreSQL of ``--pg-url``) and migrated; the Redis
DB of ``--redis-url`` is flushed. Goal (issue 3) on 2 cores: 5,000 connections
in one process, 1,000 MeterValues/s persisted with p99 under 100 ms, within 2x
of the reference.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
BENCH_ID_TAG = "BENCH-TAG"


# --- process figures ------------------------------------------------------------


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * PAGE_SIZE


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of /proc/<pid>/stat (1-based).
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def main_thread_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process's first thread (Daphne's event loop)."""
    with open(f"/proc/{pid}/task/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def raise_open_files_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


# --- one run of the load generator against one server ------------------------------


def run_load(
    *,
    label: str,
    url: str,
    server_pid: int,
    chargers: list[dict],
    args,
    on_steady: Callable[[], None] | None = None,
    helper_cpu: Callable[[], float] | None = None,
) -> dict:
    """Drive bench/loadgen.js against a listening server; return its figures.

    ``on_steady`` runs as the steady phase starts (the profiler); ``helper_cpu``
    returns CPU seconds used so far by processes working for the server (its
    PostgreSQL backends), read at the start and end of the steady phase.
    """
    idle_rss = rss_bytes(server_pid)
    plan = {
        "url": url,
        "chargers": chargers,
        "rate": args.rate,
        "durationS": args.duration,
        "connectConcurrency": args.connect_concurrency,
        "idTag": BENCH_ID_TAG,
    }
    started_cpu = cpu_seconds(server_pid)
    gen = subprocess.Popen(
        ["node", str(BENCH_DIR / "loadgen.js")],
        cwd=REPO_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    stdin, stdout = gen.stdin, gen.stdout
    if stdin is None or stdout is None:
        raise RuntimeError("load generator pipes missing")
    try:
        stdin.write(json.dumps(plan) + "\n")
        stdin.flush()
        held = json.loads(stdout.readline())
        if held.get("phase") != "held":
            raise RuntimeError(f"{label}: load generator failed: {held}")
        held_rss = rss_bytes(server_pid)
        connect_cpu = cpu_seconds(server_pid) - started_cpu
        if on_steady is not None:
            on_steady()
        stdin.write("go\n")
        stdin.flush()

        steady_cpu_start = cpu_seconds(server_pid)
        loop_cpu_start = main_thread_cpu_seconds(server_pid)
        helper_cpu_start = helper_cpu() if helper_cpu else 0.0
        steady = json.loads(stdout.readline())
        if steady.get("phase") != "steady":
            raise RuntimeError(f"{label}: load generator failed: {steady}")
        steady_cpu = cpu_seconds(server_pid) - steady_cpu_start
        steady_loop_cpu = main_thread_cpu_seconds(server_pid) - loop_cpu_start
        steady_helper_cpu = helper_cpu() - helper_cpu_start if helper_cpu else None
        steady_rss = rss_bytes(server_pid)
        stdin.write("close\n")
        stdin.flush()
        stdout.readline()
    finally:
        stdin.close()
        try:
            gen.wait(timeout=60)
        except subprocess.TimeoutExpired:
            gen.kill()
            gen.wait()

    connections = max(held["held"], 1)
    return {
        "label": label,
        "wanted": held["wanted"],
        "held": held["held"],
        "held_after_steady": steady["held"],
        "connect_s": held["connectS"],
        "connect_errors": held["errors"],
        "connect_cpu_s": connect_cpu,
        "sent": steady["sent"],
        "answered": steady["answered"],
        "failed": steady["failed"],
        "failures": steady["failures"],
        "answered_per_s": steady["answeredPerS"],
        "p50_ms": steady["p50Ms"],
        "p99_ms": steady["p99Ms"],
        "max_ms": steady["maxMs"],
        "drain_s": steady["drainS"],
        "steady_cpu_share": steady_cpu / steady["drainS"],
        "steady_cpu_s": steady_cpu,
        "steady_loop_cpu_s": steady_loop_cpu,
        "steady_helper_cpu_s": steady_helper_cpu,
        "generator_cpu_share": steady["generatorCpuShare"],
        "idle_rss_mb": idle_rss / 2**20,
        "held_rss_mb": held_rss / 2**20,
        "steady_rss_mb": steady_rss / 2**20,
        "kib_per_connection": (held_rss - idle_rss) / connections / 1024,
    }


# --- the reference server ---------------------------------------------------------


def bench_reference(chargers: list[dict], args) -> dict:
    server = subprocess.Popen(
        [sys.executable, str(BENCH_DIR / "reference_server.py"), "--port", "0"],
        cwd=REPO_DIR,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        ready = server.stdout.readline().split() if server.stdout else []
        port = int(ready[1])
        time.sleep(0.5)
        return run_load(
            label="reference (ocpp + websockets, no DB)",
            url=f"ws://127.0.0.1:{port}/ocpp/",
            server_pid=server.pid,
            chargers=chargers,
            args=args,
        )
    finally:
        stop(server)


# --- the portal -----------------------------------------------------------------


def portal_env(args) -> dict[str, str]:
    base = args.pg_url.rstrip("/").rsplit("/", 1)[0]
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_TEST_NAME"}
    env.update(
        {
            "DATABASE_URL": f"{base}/{args.database}",
            "REDIS_URL": args.redis_url,
            "DJANGO_SETTINGS_MODULE": "giu_ev.settings",
            "DEBUG": "false",
            "LOG_LEVEL": "WARNING",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "CELERY_TASK_ALWAYS_EAGER": "true",
            # Plain HTTP on 127.0.0.1: no redirect to HTTPS for the probe.
            "SECURE_SSL_REDIRECT": "false",
        }
    )
    return env


def prepare_portal_database(args, password: str) -> None:
    """Create the bench database afresh, migrate it, register the chargers."""
    import psycopg
    import redis

    with psycopg.connect(args.pg_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{args.database}"')
    redis.Redis.from_url(args.redis_url).flushdb()
    env = portal_env(args)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=REPO_DIR,
        env=env,
        check=True,
    )
    subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "_register",
            "--chargers",
            str(args.chargers),
        ],
        cwd=REPO_DIR,
        env={**env, "BENCH_CHARGER_PASSWORD": password},
        check=True,
    )


def register_chargers(count: int) -> None:
    """Runs inside the bench database's environment (see prepare_portal_database)."""
    sys.path.insert(0, str(REPO_DIR))
    import django

    django.setup()
    from django.contrib.auth.hashers import make_password

    from sessions.models import IdToken
    from stations.models import ChargePoint, Site

    site = Site.objects.create(code="bench", name="Bench", time_zone="UTC")
    # One hash for the shared bench password, copied to every row: the server
    # still checks it at every handshake, which is the cost being measured.
    password_hash = make_password(
        os.environ["BENCH_CHARGER_PASSWORD"], hasher="pbkdf2_sha256_charger"
    )
    ChargePoint.objects.bulk_create(
        [
            ChargePoint(
                identity=f"BENCH-{i:05d}", site=site, password_hash=password_hash
            )
            for i in range(count)
        ],
        batch_size=1000,
    )
    IdToken.objects.create(value=BENCH_ID_TAG)


def portal_counts(args) -> dict[str, int]:
    import psycopg

    base = args.pg_url.rstrip("/").rsplit("/", 1)[0]
    with psycopg.connect(f"{base}/{args.database}") as conn:
        samples = conn.execute("SELECT count(*) FROM charging_metersample").fetchone()
        frames = conn.execute(
            "SELECT count(*) FROM ocpp_bridge_frame WHERE action = 'MeterValues'"
        ).fetchone()
    return {"meter_samples": samples[0], "metervalues_frames": frames[0]}


def backend_cpu_seconds(args) -> float:
    """CPU seconds used so far by the PostgreSQL backends serving the bench DB.

    The portal's pool keeps its connections (and so its backends) open; a
    backend that left between two readings takes its CPU with it, so this is a
    lower bound when the pool shrinks during the steady phase.
    """
    import psycopg

    with psycopg.connect(args.pg_url, autocommit=True) as conn:
        pids = [
            row[0]
            for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s",
                (args.database,),
            )
        ]
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except OSError:
            continue
    return total


def wait_http(url: str, proc: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("Daphne exited during start-up")
        try:
            urllib.request.urlopen(url, timeout=2)  # noqa: S310 (our own child)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("Daphne did not start")


def bench_portal(chargers: list[dict], password: str, args) -> dict:
    prepare_portal_database(args, password)
    port = free_port()
    log_path = Path(args.log_dir) / "bench-daphne.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "daphne"),
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                "bench.asgi_threads:application"
                if args.executor_threads
                else "giu_ev.asgi:application",
            ],
            cwd=REPO_DIR,
            env={
                **portal_env(args),
                "BENCH_EXECUTOR_THREADS": str(args.executor_threads),
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/admin/login/", server)
        profiler: subprocess.Popen | None = None

        def start_profiler() -> None:
            # The steady phase only: the connect phase (password checks) is
            # another workload, measured by its own "server CPU" figure.
            nonlocal profiler
            if not args.profile:
                return
            profiler = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    "--pid",
                    str(server.pid),
                    "--duration",
                    str(int(args.duration)),
                    "--rate",
                    "250",
                    *(["--gil"] if args.profile_gil else []),
                    "--format",
                    args.profile_format,
                    "--output",
                    str(Path(args.log_dir) / f"bench-daphne.{args.profile_format}.txt"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

        label = "portal (Daphne, PostgreSQL, Redis layer)"
        if args.executor_threads:
            label += f", {args.executor_threads} pool threads"
        result = run_load(
            label=label,
            url=f"ws://127.0.0.1:{port}/ocpp/",
            server_pid=server.pid,
            chargers=chargers,
            args=args,
            on_steady=start_profiler,
            helper_cpu=lambda: backend_cpu_seconds(args),
        )
        if profiler is not None:
            profiler.wait(timeout=args.duration + 60)
        # Frames answered must be stored; give the last writes a moment.
        time.sleep(1)
        result.update(portal_counts(args))
        return result
    finally:
        stop(server)


# --- printing -----------------------------------------------------------------


def print_result(r: dict) -> None:
    print(f"== {r['label']}")
    print(
        f"  connections held      {r['held']} of {r['wanted']} "
        f"(after steady phase: {r['held_after_steady']}), "
        f"connected in {r['connect_s']:.1f} s, server CPU {r['connect_cpu_s']:.1f} s"
    )
    if r["connect_errors"]:
        print(f"  connect errors        {r['connect_errors'][:3]}")
    print(
        f"  MeterValues           sent {r['sent']}, answered {r['answered']}, "
        f"failed {r['failed']} in {r['drain_s']:.1f} s"
    )
    if r["failures"]:
        print(f"  failures              {r['failures'][:3]}")
    print(f"  answered per second   {r['answered_per_s']:.0f}")
    print(
        f"  answer latency        p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
        f"max {r['max_ms']:.1f} ms"
    )
    print(
        f"  server memory         idle {r['idle_rss_mb']:.0f} MiB, held "
        f"{r['held_rss_mb']:.0f} MiB, after steady {r['steady_rss_mb']:.0f} MiB, "
        f"{r['kib_per_connection']:.1f} KiB per connection"
    )
    print(
        f"  CPU (steady)          server {100 * r['steady_cpu_share']:.0f}%, "
        f"load generator {100 * r['generator_cpu_share']:.0f}% of one core"
    )
    if r["answered"]:
        per_frame_ms = 1000 * r["steady_cpu_s"] / r["answered"]
        loop_ms = 1000 * r["steady_loop_cpu_s"] / r["answered"]
        line = (
            f"  CPU per MeterValues   server {per_frame_ms:.2f} ms "
            f"(event loop {loop_ms:.2f} ms, other threads "
            f"{per_frame_ms - loop_ms:.2f} ms)"
        )
        if r["steady_helper_cpu_s"] is not None:
            backend_ms = 1000 * r["steady_helper_cpu_s"] / r["answered"]
            line += f", its PostgreSQL backends {backend_ms:.2f} ms"
        print(line + f" (steady phase CPU / {r['answered']} answered)")
    if "meter_samples" in r:
        print(
            f"  persisted             {r['metervalues_frames']} MeterValues frames "
            f"in the frame log (in and out), {r['meter_samples']} meter samples "
            f"(2 per frame: {2 * r['sent']} for all sent, "
            f"{2 * r['answered']} for those answered in time)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    register = sub.add_parser("_register", help=argparse.SUPPRESS)
    register.add_argument("--chargers", type=int, required=True)
    parser.add_argument("--chargers", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=500, help="MeterValues/s, all")
    parser.add_argument("--duration", type=float, default=30, help="steady seconds")
    parser.add_argument("--connect-concurrency", type=int, default=100)
    parser.add_argument(
        "--only", choices=["reference", "portal"], help="run one side only"
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres"
        ),
        help="PostgreSQL server (any database on it) to create the bench DB on",
    )
    parser.add_argument("--database", default="giu_ev_bench_e2e")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/2"),
    )
    parser.add_argument(
        "--log-dir", default=tempfile.gettempdir(), help="Daphne log, profile"
    )
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the portal's steady phase"
    )
    parser.add_argument(
        "--profile-format",
        choices=["speedscope", "raw", "flamegraph"],
        default="speedscope",
        help="py-spy output format (raw: collapsed stacks, one a line)",
    )
    parser.add_argument(
        "--profile-gil",
        action="store_true",
        help="sample only the thread holding the GIL (Python CPU, not waits)",
    )
    parser.add_argument(
        "--executor-threads",
        type=int,
        default=0,
        help="serve bench/asgi_threads.py with this many pool threads (experiment)",
    )
    args = parser.parse_args()

    if args.command == "_register":
        register_chargers(args.chargers)
        return

    limit = raise_open_files_limit()
    password = secrets.token_urlsafe(18)
    chargers = [
        {"identity": f"BENCH-{i:05d}", "password": password}
        for i in range(args.chargers)
    ]
    print(
        f"ocpp_load: {args.chargers} chargers, {args.rate:.0f} MeterValues/s for "
        f"{args.duration:.0f} s, {os.cpu_count()} CPUs, open files limit {limit}, "
        f"load average before the run {os.getloadavg()[0]:.1f}"
    )
    results = []
    if args.only in (None, "reference"):
        results.append(bench_reference(chargers, args))
        print_result(results[-1])
    if args.only in (None, "portal"):
        results.append(bench_portal(chargers, password, args))
        print_result(results[-1])
    if len(results) == 2:
        ref, portal = results
        print("== portal / reference")
        rate_ratio = portal["answered_per_s"] / ref["answered_per_s"]
        p99_ratio = portal["p99_ms"] / max(ref["p99_ms"], 0.001)
        memory_ratio = portal["kib_per_connection"] / max(
            ref["kib_per_connection"], 0.001
        )
        print(
            f"  answered per second {rate_ratio:.2f}x, p99 latency {p99_ratio:.2f}x, "
            f"memory per connection {memory_ratio:.2f}x"
        )


if __name__ == "__main__":
    main()
