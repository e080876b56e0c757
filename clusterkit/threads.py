"""Thread pools whose threads use Django's database connections, closed on shutdown.

Django keeps one connection per thread; a plain executor would leave them open after
its threads are done with. These pools close every thread's connections first.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import threading

from django.db import connections


class DatabaseThreadPool(concurrent.futures.ThreadPoolExecutor):
    """A ``ThreadPoolExecutor`` that can close the connections of each of its threads."""

    def __init__(self, max_workers: int, name: str) -> None:
        self._seen: set[threading.Thread] = set()
        self._seen_lock = threading.Lock()
        super().__init__(max_workers, name, initializer=self._register)

    def _register(self) -> None:
        with self._seen_lock:
            self._seen.add(threading.current_thread())

    def close_connections(self) -> None:
        """Close the database connections held by every thread of the pool."""
        with self._seen_lock:
            count = len(self._seen)
        if not count:
            return
        barrier = threading.Barrier(count)

        def close() -> None:
            connections.close_all()
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(5)  # hold this thread so every job lands on a different one

        for job in [self.submit(close) for _ in range(count)]:
            job.result(10)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Close the threads' connections, then stop the pool."""
        with contextlib.suppress(Exception):  # a stuck handler must not block the stop
            self.close_connections()
        super().shutdown(wait=wait, cancel_futures=cancel_futures)
