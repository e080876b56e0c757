"""A background event loop per process, owner of the transport client's connections.

Sync callers submit coroutines and wait on a :class:`concurrent.futures.Future`;
async callers on another loop await it through :func:`asyncio.wrap_future`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from .threads import DatabaseThreadPool

T = TypeVar("T")
# Database lookups made on behalf of the background loop (shard owners).
db_pool = DatabaseThreadPool(2, "clusterkit-client-db")
_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def get_loop() -> asyncio.AbstractEventLoop:
    """The process's background loop, started on first use."""
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            started = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(started.set)
                loop.run_forever()

            threading.Thread(target=run, name="clusterkit-client", daemon=True).start()
            started.wait()
            _loop = loop
        return _loop


def submit(coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    """Run ``coro`` on the background loop."""
    return asyncio.run_coroutine_threadsafe(coro, get_loop())


async def run(coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro`` on the background loop from any other loop."""
    loop = get_loop()
    if asyncio.get_running_loop() is loop:
        return await coro
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))


def close_connections() -> None:
    """Close the database connections this process's client machinery holds."""
    from .replies import hub

    hub.stop()
    db_pool.close_connections()
