"""One import path for the Tasks API: ``django.tasks`` (Django 6) or the backport."""

# mypy: disable-error-code="no-redef,assignment,misc"
from __future__ import annotations

from typing import Any

try:  # Django 6.0+
    from django.tasks import exceptions as _exceptions
    from django.tasks import task, task_backends
    from django.tasks.backends.base import BaseTaskBackend
    from django.tasks.base import Task, TaskContext, TaskError, TaskResult, TaskResultStatus
    from django.tasks.signals import task_enqueued, task_finished, task_started
except ImportError:  # Django 5.2 with the backport
    from django_tasks import exceptions as _exceptions
    from django_tasks import task, task_backends
    from django_tasks.backends.base import BaseTaskBackend
    from django_tasks.base import (
        Task,
        TaskContext,
        TaskError,
        TaskResult,
        TaskResultStatus,
    )
    from django_tasks.signals import (
        task_enqueued,
        task_finished,
        task_started,
    )

# The exception was renamed between the backport and Django 6.0.
InvalidTaskError: Any = getattr(_exceptions, "InvalidTaskError", None) or _exceptions.InvalidTask
TaskResultDoesNotExist: Any = _exceptions.TaskResultDoesNotExist

__all__ = [
    "BaseTaskBackend",
    "InvalidTaskError",
    "Task",
    "TaskContext",
    "TaskError",
    "TaskResult",
    "TaskResultDoesNotExist",
    "TaskResultStatus",
    "task",
    "task_backends",
    "task_enqueued",
    "task_finished",
    "task_started",
]
