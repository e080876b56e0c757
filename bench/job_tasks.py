"""The no-op tasks of the jobs benchmark: each returns how long after its enqueue it began."""

from __future__ import annotations

import time

from jobs.compat import task


@task()
async def ck_noop(sent_at: float) -> float:
    """Run by clusterkit's runner (the ``default`` backend); async, as Procrastinate's is."""
    return time.time() - sent_at


@task(backend="db")
def db_noop(sent_at: float) -> float:
    """Run by django-tasks-db's ``db_worker`` (the ``db`` backend)."""
    return time.time() - sent_at


@task()
def ck_noop_sync(sent_at: float) -> float:
    """The same as a sync task: clusterkit runs it on a handler thread."""
    return time.time() - sent_at
