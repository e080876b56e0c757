"""``ClusterTaskBackend``: Django's Tasks API on clusterkit.

``TASKS = {"default": {"BACKEND": "jobs.backends.ClusterTaskBackend"}}``. Enqueueing
stores the job in the current transaction (it commits or vanishes with it); a runner
runs it; results, errors and attempts are read back from storage.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.db import transaction

from . import engine
from .compat import (
    BaseTaskBackend,
    Task,
    TaskResult,
    TaskResultDoesNotExist,
    task_enqueued,
)
from .conf import job_settings
from .models import Job
from .results import ready_result, to_task_result


class ClusterTaskBackend(BaseTaskBackend):
    """A durable, push-driven Tasks backend: jobs are persisted entity messages.

    ``OPTIONS``: ``max_attempts`` (default ``JOBS["MAX_ATTEMPTS"]``), ``retry_on`` (a list
    of exception import paths; default: any exception).
    """

    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def enqueue(self, task: Task, args: Any, kwargs: Any) -> TaskResult:
        self.validate_task(task)
        new = engine.NewJob(
            name=task.module_path,
            args=list(args),
            kwargs=dict(kwargs),
            queue=task.queue_name,
            priority=task.priority,
            run_after=task.run_after,
            max_attempts=self.options.get("max_attempts"),
            retry_on=list(self.options.get("retry_on", [])),
            takes_context=task.takes_context,
            backend=self.alias,
        )
        conn = transaction.get_connection()
        # SQLite has one writer: enqueueing beside an open transaction would wait for it.
        if job_settings.ENQUEUE_ON_COMMIT or not conn.in_atomic_block or conn.vendor == "sqlite":
            job = engine.enqueue_many([new])[0]
        else:  # enqueue now, outside the caller's transaction
            import concurrent.futures

            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                job = pool.submit(_enqueue_alone, new).result()
        result = ready_result(task, job.id, new.args, new.kwargs, self.alias)
        task_enqueued.send(type(self), task_result=result)
        return result

    async def aenqueue(self, task: Task, args: Any, kwargs: Any) -> TaskResult:
        return await sync_to_async(self.enqueue, thread_sensitive=True)(task, args, kwargs)

    def get_result(self, result_id: str) -> TaskResult:
        try:
            return to_task_result(result_id)
        except Job.DoesNotExist:
            raise TaskResultDoesNotExist(result_id) from None

    async def aget_result(self, result_id: str) -> TaskResult:
        return await sync_to_async(self.get_result, thread_sensitive=True)(result_id)


def _enqueue_alone(new: engine.NewJob) -> Job:
    from django.db import connections

    try:
        return engine.enqueue_many([new])[0]
    finally:
        connections.close_all()

