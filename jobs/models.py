"""A job's definition, written in the enqueuing transaction; its progress lives in messages."""

from __future__ import annotations

from django.db import models


class Job(models.Model):
    """What to run and how; each attempt is a persisted message to the ``jobs.Job`` entity."""

    id = models.CharField(max_length=64, primary_key=True)
    name = models.CharField(max_length=255, help_text="task import path or registered name")
    queue = models.CharField(max_length=100, default="default")
    priority = models.SmallIntegerField(default=0)
    args = models.JSONField(default=list)
    kwargs = models.JSONField(default=dict)
    backend = models.CharField(max_length=100, default="default")
    concurrency_key = models.CharField(max_length=255, blank=True)
    entity_id = models.CharField(max_length=255, help_text="the jobs.Job entity that runs it")
    max_attempts = models.IntegerField(default=1)
    enqueued_at = models.DateTimeField()
    run_after = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["queue", "enqueued_at"], name="jobs_queue_time")]
        ordering = ["-enqueued_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"


from .workflow.models import WorkflowExecution, WorkflowSignal, WorkflowStep  # noqa: E402

__all__ = ["Job", "WorkflowExecution", "WorkflowSignal", "WorkflowStep"]
