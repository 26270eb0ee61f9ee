"""Database work of the OCPP bridge, run off the event loop."""

from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async


def run_db(func: Callable) -> Callable[..., Awaitable[Any]]:
    """Run a service in the thread pool, not the shared single DB thread.

    ``database_sync_to_async`` defaults to one thread for all callers; with
    thousands of chargers one slow write would hold up every other one.
    """
    return database_sync_to_async(func, thread_sensitive=False)
