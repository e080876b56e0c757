"""Periodic tasks: enqueue a task at every instant of a cron expression, once per instant."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from clusterkit.cron import cron

from . import engine
from .compat import Task


def periodic(
    expression: str, *, name: str | None = None, tz: str = "UTC",
    max_age: dt.timedelta = dt.timedelta(hours=1),
) -> Callable[[Task], Task]:
    """``@periodic("*/5 * * * *")`` above ``@task()``: enqueue the task on that schedule.

    The instant is the job's idempotency key, so a cron run that is delivered twice
    still enqueues one job.
    """

    def register(task: Task) -> Task:
        job_name = name or f"periodic:{task.module_path}"

        def enqueue(instant: dt.datetime) -> None:
            engine.enqueue_many([engine.NewJob(
                name=task.module_path, args=[], kwargs={}, queue=task.queue_name,
                priority=task.priority, idempotency_key=f"{job_name}@{instant.isoformat()}",
                backend=task.backend,
            )])

        cron(expression, name=job_name, tz=tz, max_age=max_age)(enqueue)
        return task

    return register


def periodic_jobs() -> dict[str, Any]:
    """The registered periodic tasks' cron names (for status pages)."""
    from clusterkit.cron import crons

    return {n: c.expression for n, c in crons.items() if n.startswith("periodic:")}
