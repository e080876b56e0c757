"""Waiting for the replies of persisted calls, in any process.

A caller registers the message id it waits for. A runner in the same process hands
replies over directly; others announce them with ``NOTIFY clusterkit_reply`` after the
commit (PostgreSQL), and a watcher thread per process reads them back. Every waiter is
also polled from the ``Reply`` table, so a missed notification only costs latency.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from typing import Any

from django.db import connections

from .conf import cluster_settings
from .storage import REPLY_CHANNEL, Storage

logger = logging.getLogger("clusterkit.replies")
Reply = tuple[int, str]  # (status, payload)


class ReplyHub:
    """The process's table of callers waiting for replies."""

    def __init__(self, alias: str = "default") -> None:
        self.alias = alias
        self.lock = threading.Lock()
        self.waiters: dict[int, list[concurrent.futures.Future[Reply]]] = {}
        self.since: dict[int, float] = {}
        self.wakeup = threading.Event()
        self.thread: threading.Thread | None = None
        self.stopped = False

    def watch(self, request_id: int) -> concurrent.futures.Future[Reply]:
        """A future that completes with ``(status, payload)`` of ``request_id``."""
        future: concurrent.futures.Future[Reply] = concurrent.futures.Future()
        with self.lock:
            self.waiters.setdefault(request_id, []).append(future)
            self.since.setdefault(request_id, time.monotonic())
            if self.thread is None or not self.thread.is_alive():
                self.stopped = False
                self.thread = threading.Thread(
                    target=self._run, name="clusterkit-replies", daemon=True
                )
                self.thread.start()
        self.wakeup.set()
        return future

    def forget(self, request_id: int, future: concurrent.futures.Future[Reply]) -> None:
        """Stop waiting (after a timeout)."""
        with self.lock:
            futures = self.waiters.get(request_id, [])
            if future in futures:
                futures.remove(future)
            if not futures:
                self.waiters.pop(request_id, None)
                self.since.pop(request_id, None)

    def resolve(self, request_id: int, reply: Reply) -> None:
        """Hand ``reply`` to whoever waits for ``request_id`` in this process."""
        with self.lock:
            futures = self.waiters.pop(request_id, None)
            self.since.pop(request_id, None)
        for future in futures or ():
            if not future.done():
                future.set_result(reply)

    def pending(self, older_than: float = 0.0) -> list[int]:
        """Ids still waited for, registered at least ``older_than`` seconds ago."""
        cutoff = time.monotonic() - older_than
        with self.lock:
            return [i for i, t in self.since.items() if t <= cutoff]

    def _fetch(self, ids: list[int]) -> None:
        if ids:
            for request_id, reply in Storage(self.alias).replies(ids).items():
                self.resolve(request_id, reply)

    # -- the watcher thread ----------------------------------------------------------

    def stop(self) -> None:
        """Stop the watcher thread and close its connection (it restarts when needed)."""
        self.stopped = True
        self.wakeup.set()
        thread = self.thread
        if thread is not None:
            thread.join(5)

    def _run(self) -> None:
        while not self.stopped:
            try:
                if connections[self.alias].vendor == "postgresql":
                    self._listen()
                else:
                    self._poll()
            except Exception:
                logger.warning("reply watcher failed; retrying", exc_info=True)
                time.sleep(0.5)
            finally:
                connections[self.alias].close()

    def _poll(self) -> None:
        """Poll the table, quickly for new waiters and then every REPLY_POLL_INTERVAL."""
        interval = float(cluster_settings.REPLY_POLL_INTERVAL)
        while not self.stopped:
            self.wakeup.wait(interval)
            self.wakeup.clear()
            young = set(self.pending()) - set(self.pending(interval))
            if young:  # poll fresh waiters faster
                time.sleep(0.01)
            self._fetch(self.pending())
            connections[self.alias].close_if_unusable_or_obsolete()

    def _listen(self) -> None:
        import psycopg

        conn = psycopg.connect(conninfo(self.alias), autocommit=True)
        try:
            conn.execute(f"LISTEN {REPLY_CHANNEL}")
            interval = float(cluster_settings.REPLY_POLL_INTERVAL)
            self._fetch_with(conn, self.pending())  # committed before LISTEN took effect
            last_poll = time.monotonic()
            while not self.stopped:
                ids: list[int] = []
                for note in conn.notifies(timeout=interval, stop_after=1):
                    ids.extend(int(x) for x in note.payload.split(",") if x)
                for note in conn.notifies(timeout=0.0):
                    ids.extend(int(x) for x in note.payload.split(",") if x)
                with self.lock:
                    wanted = [i for i in ids if i in self.waiters]
                if time.monotonic() - last_poll >= interval:
                    wanted.extend(self.pending(interval))
                    last_poll = time.monotonic()
                self._fetch_with(conn, sorted(set(wanted)))
        finally:
            conn.close()

    def _fetch_with(self, conn: Any, ids: list[int]) -> None:
        if not ids:
            return
        rows = conn.execute(
            "SELECT request_id, status, payload FROM clusterkit_reply "
            "WHERE kind = 0 AND request_id = ANY(%s)",
            [ids],
        ).fetchall()
        for request_id, status, payload in rows:
            self.resolve(request_id, (status, payload))


def conninfo(alias: str) -> str:
    """A libpq connection string for the database behind ``alias``."""
    from psycopg.conninfo import make_conninfo

    params = connections[alias].settings_dict
    return make_conninfo(
        dbname=params.get("NAME") or "postgres",
        user=params.get("USER") or None,
        password=params.get("PASSWORD") or None,
        host=params.get("HOST") or None,
        port=str(params.get("PORT") or "") or None,
    )


hub = ReplyHub()
