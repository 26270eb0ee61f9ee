"""CPU and SQL statements per MeterValues frame inside the portal, no sockets.

The consumer (ocpp_bridge.consumers.ChargePointConsumer) is driven in this
process through Channels' WebsocketCommunicator, on PostgreSQL and the Redis
channel layer as in production: N chargers connect with their password, boot,
start a transaction, then send MeterValues in rounds (every charger one frame
per round, all at once, each waiting for its answer). Printed: process CPU per
frame (split into the event-loop thread and the others: the database pool),
SQL statements per frame (django-prometheus' counter), and the CPU the bench
database's PostgreSQL backends used per frame. CPU time, unlike a rate, changes
little when other processes share the machine, so this is the figure to compare
while it is busy.

    python bench/ocpp_frame_cpu.py --chargers 50 --rounds 40
    python bench/ocpp_frame_cpu.py --profile /tmp/frames.prof   # cProfile, all threads

The database (``--database``) is created afresh and migrated as by
bench/ocpp_load.py. What this leaves out is Daphne's own WebSocket work
(framing, masking, Twisted), and what it adds is the communicator's (it
patches Channels' close_old_connections around every message it passes);
bench/ocpp_load.py measures the whole server. Rounds send every charger's
frame at once, so the frame writer's batches are as full as they get: run it
with ``--chargers 1`` for the cost of a frame written alone.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import json
import os
import pstats
import secrets
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
sys.path.insert(0, str(REPO_DIR))

from bench.ocpp_load import (  # noqa: E402
    BENCH_ID_TAG,
    backend_cpu_seconds,
    portal_env,
    prepare_portal_database,
)

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds(tid: int) -> float:
    with open(f"/proc/self/task/{tid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def statements_executed() -> float:
    """SQL statements run so far (an executemany counts one per row)."""
    from django_prometheus.db.metrics import execute_total

    return sum(
        sample.value
        for metric in execute_total.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    )


def _now_z() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Charger:
    """One charger: a communicator speaking OCPP-J."""

    def __init__(self, identity: str, password: str):
        from channels.routing import URLRouter
        from channels.testing import WebsocketCommunicator

        from ocpp_bridge.routing import websocket_urlpatterns

        auth = base64.b64encode(f"{identity}:{password}".encode())
        path = f"/ocpp/{identity}"
        self.comm = WebsocketCommunicator(
            URLRouter(websocket_urlpatterns),
            path,
            headers=[(b"authorization", b"Basic " + auth)],
            subprotocols=["ocpp1.6"],
        )
        self.comm.scope["raw_path"] = path.encode()
        self.comm.scope["client"] = ("127.0.0.1", 5000)
        self.identity = identity
        self.ids = 0
        self.meter_wh = 0
        self.transaction_id = None

    async def call(self, action: str, payload: dict) -> list:
        self.ids += 1
        message_id = f"{self.identity}-{self.ids}"
        await self.comm.send_to(text_data=json.dumps([2, message_id, action, payload]))
        reply = json.loads(await self.comm.receive_from(timeout=60))
        if reply[1] != message_id or reply[0] != 3:
            raise RuntimeError(f"{self.identity}: unexpected answer {reply}")
        return reply

    async def open(self) -> None:
        connected, _ = await self.comm.connect(timeout=60)
        if not connected:
            raise RuntimeError(f"{self.identity} refused")
        await self.call(
            "BootNotification",
            {"chargePointVendor": "GIU-bench", "chargePointModel": "frame-cpu"},
        )
        start = await self.call(
            "StartTransaction",
            {
                "connectorId": 1,
                "idTag": BENCH_ID_TAG,
                "meterStart": 0,
                "timestamp": _now_z(),
            },
        )
        self.transaction_id = start[2]["transactionId"]

    async def meter_values(self) -> None:
        self.meter_wh += 50
        await self.call(
            "MeterValues",
            {
                "connectorId": 1,
                "transactionId": self.transaction_id,
                "meterValue": [
                    {
                        "timestamp": _now_z(),
                        "sampledValue": [
                            {
                                "value": str(self.meter_wh),
                                "measurand": "Energy.Active.Import.Register",
                                "unit": "Wh",
                                "context": "Sample.Periodic",
                            },
                            {
                                "value": "11000",
                                "measurand": "Power.Active.Import",
                                "unit": "W",
                                "context": "Sample.Periodic",
                            },
                        ],
                    }
                ],
            },
        )


async def drive(args, password: str) -> dict:
    chargers = [Charger(f"BENCH-{i:05d}", password) for i in range(args.chargers)]
    for start in range(0, len(chargers), 20):
        await asyncio.gather(*(c.open() for c in chargers[start : start + 20]))
    # Warm-up: connection pool, imports, first statements of each kind.
    for _ in range(args.warmup):
        await asyncio.gather(*(c.meter_values() for c in chargers))

    loop_tid = threading.get_native_id()
    threads_before = {t: thread_cpu_seconds(t) for t in _tids()}
    process_before = time.process_time()
    statements_before = statements_executed()
    backends_before = backend_cpu_seconds(args)
    wall_before = time.monotonic()
    profilers = _profile_all() if args.profile else None
    for _ in range(args.rounds):
        await asyncio.gather(*(c.meter_values() for c in chargers))
    if profilers is not None:
        _profile_stop(profilers)
    wall = time.monotonic() - wall_before
    process_cpu = time.process_time() - process_before
    statements = statements_executed() - statements_before
    # The pool answers after commit; its last statements are counted above.
    await asyncio.sleep(0.2)
    backends = backend_cpu_seconds(args) - backends_before
    threads_after = {t: thread_cpu_seconds(t) for t in _tids()}
    loop_cpu = threads_after.get(loop_tid, 0) - threads_before.get(loop_tid, 0)

    for charger in chargers:
        await charger.comm.disconnect()
    frames = args.rounds * len(chargers)
    if profilers is not None:
        stats = pstats.Stats(profilers[0])
        for other in profilers[1:]:
            stats.add(other)
        stats.dump_stats(args.profile)
        stats.sort_stats("cumulative").print_stats(args.profile_lines)
    return {
        "frames": frames,
        "wall_s": wall,
        "cpu_ms": 1000 * process_cpu / frames,
        "loop_cpu_ms": 1000 * loop_cpu / frames,
        "other_cpu_ms": 1000 * (process_cpu - loop_cpu) / frames,
        "statements": statements / frames,
        "backend_cpu_ms": 1000 * backends / frames,
    }


def _tids() -> list[int]:
    return [int(t) for t in os.listdir("/proc/self/task")]


_original_run = None


def _profile_all() -> list[cProfile.Profile]:
    """cProfile (CPU time) the event loop and each pool thread, one per thread.

    cProfile profiles the thread that enables it, so each pool thread gets its
    own profiler, enabled around every task it runs; they are merged at the end.
    """
    import concurrent.futures.thread as pool_thread

    global _original_run
    profilers = [cProfile.Profile(time.thread_time)]
    local = threading.local()
    original_run = _original_run = pool_thread._WorkItem.run

    def run(self):
        profiler = getattr(local, "profiler", None)
        if profiler is None:
            profiler = local.profiler = cProfile.Profile(time.thread_time)
            profilers.append(profiler)
        profiler.enable()
        try:
            return original_run(self)
        finally:
            profiler.disable()

    pool_thread._WorkItem.run = run
    profilers[0].enable()
    return profilers


def _profile_stop(profilers: list[cProfile.Profile]) -> None:
    import concurrent.futures.thread as pool_thread

    profilers[0].disable()
    pool_thread._WorkItem.run = _original_run


def run_in_portal_env(args, password: str) -> None:
    os.environ.update(portal_env(args))
    import django

    django.setup()
    result = asyncio.run(drive(args, password))
    print(
        f"ocpp_frame_cpu: {args.chargers} chargers x {args.rounds} rounds = "
        f"{result['frames']} MeterValues in {result['wall_s']:.1f} s, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"  CPU per frame         {result['cpu_ms']:.2f} ms "
        f"(event loop {result['loop_cpu_ms']:.2f} ms, "
        f"other threads {result['other_cpu_ms']:.2f} ms)"
    )
    print(f"  SQL statements        {result['statements']:.1f} per frame")
    print(f"  PostgreSQL backends   {result['backend_cpu_ms']:.2f} ms CPU per frame")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chargers", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=3, help="rounds not counted")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--database", default="giu_ev_bench_frames")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/2"),
    )
    parser.add_argument("--profile", help="write cProfile stats of the rounds here")
    parser.add_argument("--profile-lines", type=int, default=60)
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="use the database of an earlier run (BENCH_CHARGER_PASSWORD as printed)",
    )
    args = parser.parse_args()

    if args.reuse:
        # The chargers' password of the run that created the database.
        password = os.environ["BENCH_CHARGER_PASSWORD"]
    else:
        password = secrets.token_urlsafe(18)
        prepare_portal_database(args, password)
        print(f"(chargers' password, for --reuse: BENCH_CHARGER_PASSWORD={password})")
    run_in_portal_env(args, password)


if __name__ == "__main__":
    main()
