"""The Tasks API's ``task_started`` / ``task_finished`` signals, sent from the runner."""

from __future__ import annotations

from typing import TYPE_CHECKING

from asgiref.sync import sync_to_async

if TYPE_CHECKING:
    from .engine import Attempt, Outcome


def _is_task(job: Attempt) -> bool:
    from .engine import handlers

    return job.name not in handlers


async def started(job: Attempt, worker: str, at: float) -> None:
    """Send ``task_started`` for a Tasks API job (built from the message, no query)."""
    from .compat import task_started
    from .results import from_attempt

    if _is_task(job) and task_started.has_listeners():
        result = from_attempt(job, None, worker, at)
        await sync_to_async(task_started.send, thread_sensitive=False)(
            sender=result.task.get_backend().__class__, task_result=result
        )


async def finished(job: Attempt, outcome: Outcome) -> None:
    """Send ``task_finished`` once the job ended (succeeded, failed for good, cancelled)."""
    from .compat import task_finished
    from .results import from_attempt

    if _is_task(job) and task_finished.has_listeners():
        result = from_attempt(job, outcome, outcome.worker_id, outcome.started_at)
        await sync_to_async(task_finished.send, thread_sensitive=False)(
            sender=result.task.get_backend().__class__, task_result=result
        )
