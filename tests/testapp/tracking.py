"""Entities and singletons of the fault-injection tests (``tests/cluster/test_faults.py``).

``Tracked.handle`` records every execution (entity, seq, pid, start, end) and returns
``{"pid", "started"}``, so the committed reply names the one execution that counted and
every other execution of the same call is known to have been fenced or abandoned.
"""

from __future__ import annotations

import os
import threading
import time

from clusterkit import Entity, context, rpc

from .models import SingletonSpan, TrackedRun

__all__ = ["Tracked"]


class Tracked(Entity):
    """Records each execution of ``handle`` with its interval; ``work`` makes it slow."""

    def __init__(self) -> None:
        self.last = -1

    @rpc(persisted=True)
    def handle(self, seq: int, key: str = "", work: float = 0.0) -> dict[str, float]:
        started = time.time()
        if work:
            time.sleep(work)
        cluster = context.current().cluster
        TrackedRun.objects.create(
            entity_id=self.entity_id,
            seq=seq,
            key=key,
            pid=os.getpid(),
            runner_id=cluster.runner_id if cluster is not None else 0,
            started=started,
            ended=time.time(),
            out_of_order=seq <= self.last,
        )
        self.last = seq
        return {"pid": os.getpid(), "started": started}


if os.environ.get("CLUSTERKIT_TEST_SPANS") == "1":
    # Registered only in runner subprocesses that ask for it.
    from clusterkit.singleton import singleton

    @singleton("test-span")
    def span(stop: threading.Event) -> None:
        now = time.time()
        row = SingletonSpan.objects.create(pid=os.getpid(), started=now, last_seen=now)
        try:
            while not stop.wait(0.02):
                SingletonSpan.objects.filter(pk=row.pk).update(last_seen=time.time())
        finally:
            SingletonSpan.objects.filter(pk=row.pk).update(ended=time.time())
