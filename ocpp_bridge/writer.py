"""The frame log of all chargers on this process, written in batches.

Each charger's socket hands its writes (``FrameWrite``: a frame, and for a
MeterValues frame also its data and its answer) to the one ``FrameWriter`` of
its event loop and waits until they are committed; only then is the answer
sent, as before. The writer stores whatever has queued up while its previous
batch was in the database, in one transaction and one trip to the thread pool
(``frame_writes_store``). At a trickle a batch is one write and goes at once;
under load the statements and the commit of a batch are shared by all the
chargers in it, which is what lets one process keep up with a thousand
MeterValues a second (docs/ocpp-testing.md, "Where the portal's time goes").

Nothing is acknowledged that is not stored: a write that fails is retried on
its own, and its frame is stored even when its data cannot be (the handler
then answers InternalError). A crash loses only writes not yet committed,
whose frames were therefore not answered either: the charger sends them again.
"""

import asyncio
import logging
import time
import weakref
from concurrent.futures import ThreadPoolExecutor

from django.db import connections

from ocpp_bridge.services import FramesNotStored, FrameWrite, frame_writes_store

logger = logging.getLogger(__name__)

# Batches in the database at once. Two let one batch's commit (a disk flush)
# overlap the next batch's Python work; more only split the queue into smaller
# batches that each pay the fixed statements again.
FLUSHES_AT_ONCE = 2
# Writes per batch: bounds one transaction's size and the wait of the first
# write in it (1,000 MeterValues a second fill about 20 per 20 ms batch).
MAX_BATCH = 200

# A writer thread keeps its pooled database connection from batch to batch:
# taking one from the pool and giving it back around every batch (what
# run_db does) cost 0.3 ms of CPU, more than a small batch's own SQL. It is
# given back after this long, or at once if it broke, like the pool would.
CONNECTION_KEPT_S = 600

_executor = ThreadPoolExecutor(
    max_workers=FLUSHES_AT_ONCE, thread_name_prefix="frame-writer"
)

_writers: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, FrameWriter]" = (
    weakref.WeakKeyDictionary()
)


def frame_writer() -> "FrameWriter":
    """The writer of the running event loop (one per process under Daphne)."""
    loop = asyncio.get_running_loop()
    writer = _writers.get(loop)
    if writer is None:
        writer = _writers[loop] = FrameWriter()
    return writer


class FrameWriter:
    """Queues writes and stores them in batches, at most FLUSHES_AT_ONCE at once."""

    def __init__(self) -> None:
        self._queue: list[tuple[FrameWrite, asyncio.Future]] = []
        self._flushing = 0
        self._tasks: set[asyncio.Task] = set()

    async def store(self, write: FrameWrite) -> None:
        """Return once ``write`` is committed; raise what kept it from being so.

        ``FramesNotStored``: nothing was stored. Any other error: the frames
        were stored, not the data or the answer.
        """
        future = asyncio.get_running_loop().create_future()
        self._queue.append((write, future))
        if self._flushing < FLUSHES_AT_ONCE:
            self._flushing += 1
            task = asyncio.create_task(self._flush())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        # The write goes on even if the socket's task is cancelled meanwhile
        # (a charger that disconnects): its frame is stored all the same.
        outcome = await asyncio.shield(future)
        if outcome is not None:
            raise outcome

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch = self._queue[:MAX_BATCH]
                del self._queue[:MAX_BATCH]
                try:
                    outcomes = await asyncio.get_running_loop().run_in_executor(
                        _executor, _store, [write for write, _ in batch]
                    )
                except BaseException as error:
                    # The pool itself failed (or the loop is shutting down).
                    for _, future in batch:
                        if not future.done():
                            future.set_result(FramesNotStored(repr(error)))
                    raise
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if not future.done():
                        future.set_result(outcome)
        finally:
            self._flushing -= 1


_connected_at: dict[int, float] = {}


def _store(writes: list[FrameWrite]) -> list:
    """Runs on a writer thread: store one batch, keep the connection if sound."""
    try:
        return frame_writes_store(writes=writes)
    finally:
        _connections_keep_or_close()


def _connections_keep_or_close() -> None:
    """Django's close_old_connections, without closing a sound young connection."""
    for connection in connections.all(initialized_only=True):
        if connection.connection is None:
            continue
        key = id(connection.connection)
        opened = _connected_at.setdefault(key, time.monotonic())
        broken = connection.get_autocommit() != connection.settings_dict[
            "AUTOCOMMIT"
        ] or (connection.errors_occurred and not connection.is_usable())
        if broken or time.monotonic() - opened > CONNECTION_KEPT_S:
            connection.close()
            _connected_at.pop(key, None)
        else:
            connection.errors_occurred = False
