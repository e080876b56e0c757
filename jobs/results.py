"""Job state as the Tasks API's ``TaskResult``."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from django.utils.module_loading import import_string

from . import engine
from .compat import Task, TaskContext, TaskError, TaskResult, TaskResultStatus

STATUS = {
    engine.READY: TaskResultStatus.READY,
    engine.RUNNING: TaskResultStatus.RUNNING,
    engine.SUCCESSFUL: TaskResultStatus.SUCCESSFUL,
    engine.FAILED: TaskResultStatus.FAILED,
    engine.CANCELLED: TaskResultStatus.FAILED,
}


def _when(seconds: float | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(seconds, dt.UTC) if seconds else None


@functools.lru_cache(maxsize=1024)
def _task(name: str, queue: str, priority: int, backend: str) -> Task:
    task = import_string(name)
    if not isinstance(task, Task):
        raise LookupError(f"{name!r} is not a task")
    return task.using(queue_name=queue, priority=priority, backend=backend)


def _result(task: Task, **fields: Any) -> TaskResult:
    value = fields.pop("return_value", None)
    result: TaskResult = TaskResult(task=task, **fields)
    object.__setattr__(result, "_return_value", value)
    return result


def _error(outcome: engine.Outcome) -> TaskError:
    return TaskError(
        exception_class_path=outcome.error_class, traceback=outcome.error_traceback
    )


def to_task_result(job_id: str) -> TaskResult:
    """The ``TaskResult`` of ``job_id`` from its row, attempts and replies."""
    current = engine.state(job_id)
    job = current.job
    outcomes = current.outcomes
    workers = [o.worker_id or "unknown" for o in outcomes]
    started = [o.started_at for o in outcomes]
    if current.status == engine.RUNNING:
        last_read = current.attempts[-1][0].last_read
        workers.append("running")
        started.append((last_read or 0) / 1000)
    final = outcomes[-1] if outcomes and current.status not in (engine.READY,) else None
    return _result(
        _task(job.name, job.queue, job.priority, job.backend),
        id=job.id,
        status=STATUS[current.status],
        enqueued_at=job.enqueued_at,
        started_at=_when(started[0]) if started else None,
        finished_at=_when(final.finished_at) if final and current.status != engine.RUNNING
        else None,
        last_attempted_at=_when(started[-1]) if started else None,
        args=job.args,
        kwargs=job.kwargs,
        backend=job.backend,
        errors=[_error(o) for o in current.errors],
        worker_ids=workers,
        return_value=current.return_value,
    )


def from_attempt(
    job: engine.Attempt, outcome: engine.Outcome | None, worker: str, started: float
) -> TaskResult:
    """A ``TaskResult`` for the signals, built from the attempt in hand (no query)."""
    status = engine.RUNNING if outcome is None else outcome.status
    errors = [] if outcome is None or not outcome.error_class else [_error(outcome)]
    return _result(
        _task(job.name, job.queue, job.priority, job.backend),
        id=job.job_id,
        status=STATUS[status],
        enqueued_at=_when(job.enqueued_at),
        started_at=_when(started),
        finished_at=_when(outcome.finished_at) if outcome else None,
        last_attempted_at=_when(started),
        args=job.args,
        kwargs=job.kwargs,
        backend=job.backend,
        errors=errors,
        worker_ids=[worker] * job.attempt,
        return_value=outcome.return_value if outcome else None,
    )


def ready_result(
    task: Task, job_id: str, args: list[Any], kwargs: dict[str, Any], backend: str
) -> TaskResult:
    """The ``TaskResult`` of a job just enqueued (no query)."""
    return _result(
        task, id=job_id, status=TaskResultStatus.READY,
        enqueued_at=dt.datetime.now(dt.UTC), started_at=None, finished_at=None,
        last_attempted_at=None, args=args, kwargs=kwargs, backend=backend, errors=[],
        worker_ids=[],
    )


def context_for(job_id: str) -> TaskContext:
    """The ``TaskContext`` handed to a task declared with ``takes_context=True``."""
    return TaskContext(task_result=to_task_result(job_id))
