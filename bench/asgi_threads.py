"""The portal's ASGI application with a wider default thread pool (bench only).

`python bench/ocpp_load.py --executor-threads N` serves this instead of
giu_ev.asgi, to measure whether the 6 threads asyncio gives a 2-core machine
(min(32, CPUs + 4)) hold the consumer back. The pool runs the bridge's
services (boot, status, transactions, handshakes: database_sync_to_async with
thread_sensitive=False); the frame log and MeterValues go through the frame
writer's own two threads (ocpp_bridge/writer.py), which this does not change.
"""

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

from giu_ev.asgi import application

# Daphne installs Twisted's asyncio reactor, whose loop is current while it
# imports the application.
asyncio.get_event_loop().set_default_executor(
    ThreadPoolExecutor(
        max_workers=int(os.environ["BENCH_EXECUTOR_THREADS"]),
        thread_name_prefix="db",
    )
)

__all__ = ["application"]
