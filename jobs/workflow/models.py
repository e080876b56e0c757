"""What a workflow execution has done so far: its row, its history of steps, its signals.

The history is the truth replay reads: one :class:`WorkflowStep` per activity, sleep,
signal wait, rate-limit permit or child workflow, in the order the body reached them.
A step is written once, when it completes (or starts waiting); replay returns the stored
result instead of running the step again.
"""

from __future__ import annotations

from django.db import models

RUNNING, SUSPENDED = "running", "suspended"
COMPLETED, FAILED, CANCELLED = "completed", "failed", "cancelled"
TERMINAL = (COMPLETED, FAILED, CANCELLED)
STATUS_CHOICES = [(s, s) for s in (RUNNING, SUSPENDED, COMPLETED, FAILED, CANCELLED)]

# Step kinds and their states.
ACTIVITY, SLEEP, SIGNAL, PERMIT, CHILD = "activity", "sleep", "signal", "permit", "child"
KIND_CHOICES = [(k, k) for k in (ACTIVITY, SLEEP, SIGNAL, PERMIT, CHILD)]
DONE, RETRYING, WAITING, ERROR, TIMED_OUT = "done", "retrying", "waiting", "error", "timed_out"
STEP_STATES = [(s, s) for s in (DONE, RETRYING, WAITING, ERROR, TIMED_OUT)]


class WorkflowExecution(models.Model):
    """One execution of a workflow, keyed by its execution id (its entity id)."""

    id = models.CharField(max_length=64, primary_key=True, help_text="the execution id")
    name = models.CharField(max_length=255, db_index=True)
    idempotency_key = models.CharField(max_length=255, blank=True)
    args = models.JSONField(default=list)
    kwargs = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=STATUS_CHOICES, default=RUNNING)
    result = models.JSONField(null=True, blank=True)
    error_type = models.CharField(max_length=255, blank=True)
    error = models.TextField(blank=True)
    parent = models.CharField(max_length=64, blank=True, help_text="the parent execution id")
    cancel_requested = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "jobs"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "created_at"], name="jobs_wf_status")]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"


class WorkflowStep(models.Model):
    """One step of an execution's history, at position ``seq`` of the body."""

    execution = models.ForeignKey(
        WorkflowExecution, on_delete=models.CASCADE, related_name="steps"
    )
    seq = models.IntegerField()
    kind = models.CharField(max_length=16, choices=KIND_CHOICES)
    name = models.CharField(max_length=255)
    state = models.CharField(max_length=16, choices=STEP_STATES)
    args = models.JSONField(default=list)
    kwargs = models.JSONField(default=dict)
    result = models.JSONField(null=True, blank=True)
    error_type = models.CharField(max_length=255, blank=True)
    error = models.TextField(blank=True)
    attempts = models.JSONField(default=list, help_text="one entry per attempt")
    wake_at = models.FloatField(null=True, blank=True, help_text="Unix seconds")
    compensated_at = models.DateTimeField(null=True, blank=True)
    compensation_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        app_label = "jobs"
        ordering = ["execution", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["execution", "seq"], name="jobs_wf_step_seq")
        ]

    def __str__(self) -> str:
        return f"{self.execution_id} #{self.seq} {self.kind} {self.name}"


class WorkflowSignal(models.Model):
    """A signal sent to an execution; kept even when nobody waits for it yet."""

    execution_id = models.CharField(max_length=64)
    name = models.CharField(max_length=255)
    payload = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "jobs"
        constraints = [
            models.UniqueConstraint(fields=["execution_id", "name"], name="jobs_wf_signal_once")
        ]

    def __str__(self) -> str:
        return f"{self.execution_id}/{self.name}"
