"""The Tasks API's ``task_started`` / ``task_finished`` signals, sent from the runner: on a
handler thread (receivers are sync code that may use the ORM), or on the event loop when
the only receivers are the Tasks framework's own log receivers."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .engine import Attempt, Outcome

# Modules whose signal receivers only log (Django's Tasks framework and its backport).
FRAMEWORK_RECEIVERS = frozenset({"django.tasks.signals", "django_tasks.signals"})


def _is_task(job: Attempt) -> bool:
    from .engine import handlers

    return job.name not in handlers


def need_thread(job: Attempt) -> bool:
    """Whether sending the job's signals needs a thread: some receiver may be code that
    uses the ORM. The Tasks framework's own receivers only log, so they run on the loop."""
    from .compat import task_finished, task_started

    if not _is_task(job):
        return False
    for signal in (task_started, task_finished):
        for entry in signal.receivers:
            receiver = entry[1]() if isinstance(entry[1], weakref.ReferenceType) else entry[1]
            if getattr(receiver, "__module__", None) not in FRAMEWORK_RECEIVERS:
                return True
    return False


def send_started(job: Attempt, worker: str, at: float) -> None:
    """Send ``task_started`` for a Tasks API job (built from the message, no query)."""
    from .compat import task_started
    from .results import from_attempt

    if _is_task(job) and task_started.has_listeners():
        result = from_attempt(job, None, worker, at)
        task_started.send(sender=result.task.get_backend().__class__, task_result=result)


def send_finished(job: Attempt, outcome: Outcome) -> None:
    """Send ``task_finished`` once the job ended (succeeded, failed for good, cancelled)."""
    from .compat import task_finished
    from .results import from_attempt

    if _is_task(job) and task_finished.has_listeners():
        result = from_attempt(job, outcome, outcome.worker_id, outcome.started_at)
        task_finished.send(sender=result.task.get_backend().__class__, task_result=result)
