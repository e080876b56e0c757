"""Reading and writing an execution's history (sync; callers run it on a thread).

Every write is one short transaction. A step is final once it is ``done``, ``error`` or
``timed_out``: the first writer wins and later writers read what it stored, so a runner
that lost its shard and a new owner that replays the same step agree on one result.
Writes made by a replay are *fenced*: in the same transaction they check that this
runner still holds the execution's shard lease (unexpired), so a runner that was paused
or cut off past its lease cannot write steps or end the execution any more.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models.functions import Now
from django.utils import timezone

from clusterkit import context
from clusterkit.models import ShardLease

from .models import (
    DONE,
    ERROR,
    TERMINAL,
    TIMED_OUT,
    WAITING,
    WorkflowExecution,
    WorkflowSignal,
    WorkflowStep,
)

FINAL_STEPS = (DONE, ERROR, TIMED_OUT)
ENTITY_TYPE = "jobs.Workflow"


class Fenced(BaseException):  # so that a body's `except Exception` cannot swallow it
    """This runner no longer holds the execution's shard: its writes must not land."""


@contextlib.contextmanager
def fenced() -> Iterator[None]:
    """A transaction that first checks, inside a replay, that its runner holds the shard."""
    with transaction.atomic():
        cluster = context.current().cluster
        if cluster is not None and cluster.entity_type == ENTITY_TYPE:
            held = ShardLease.objects.filter(
                shard_group=cluster.shard_group, shard_id=cluster.shard_id,
                runner_id=cluster.runner_id, expires_at__gt=Now(),
            ).exists()
            if not held:
                raise Fenced(
                    f"runner {cluster.runner_id} no longer holds shard "
                    f"{cluster.shard_group}:{cluster.shard_id} of {cluster.entity_id}"
                )
        yield


def load(execution_id: str) -> tuple[WorkflowExecution | None, dict[int, WorkflowStep]]:
    """The execution row and its steps by position."""
    execution = WorkflowExecution.objects.filter(pk=execution_id).first()
    if execution is None:
        return None, {}
    return execution, {s.seq: s for s in WorkflowStep.objects.filter(execution_id=execution_id)}


def steps(execution_id: str) -> list[WorkflowStep]:
    """The steps of an execution in order."""
    return list(WorkflowStep.objects.filter(execution_id=execution_id).order_by("seq"))


def save_step(
    execution_id: str, seq: int, kind: str, name: str, existing: WorkflowStep | None,
    **fields: Any,
) -> WorkflowStep:
    """Insert step ``seq`` or update it unless it is final; return what is stored."""
    if existing is None:
        try:
            with fenced():
                return WorkflowStep.objects.create(
                    execution_id=execution_id, seq=seq, kind=kind, name=name, **fields
                )
        except IntegrityError:
            pass  # written meanwhile (by another replay of the same step): update or read
    query = WorkflowStep.objects.filter(execution_id=execution_id, seq=seq)
    with fenced():
        query.exclude(state__in=FINAL_STEPS).update(updated_at=timezone.now(), **fields)
    return query.get()


def wait_step(
    execution_id: str, seq: int, kind: str, name: str, wake_at: float, result: Any,
    schedule: bool,
) -> WorkflowStep:
    """Record a waiting step and, when ``schedule``, the message that wakes it at ``wake_at``."""
    with transaction.atomic():
        row = save_step(
            execution_id, seq, kind, name, None, state=WAITING, wake_at=wake_at, result=result
        )
        if schedule and row.state == WAITING and row.wake_at is not None:
            wake(execution_id, f"{kind} {name}", key=f"wake:{seq}", at=row.wake_at)
    return row


def wake(
    execution_id: str, reason: str, *, key: str | None = None, at: float | None = None
) -> None:
    """Store a message that makes the execution replay (once per ``key``; at time ``at``)."""
    from .entity import WorkflowEntity

    caller = WorkflowEntity.client(execution_id).resume
    if key is not None or at is not None:
        when = None if at is None else dt.datetime.fromtimestamp(at, dt.UTC)
        caller = caller.options(primary_key=key, deliver_at=when)
    caller.send(reason=reason)


def set_status(execution_id: str, status: str) -> None:
    """Mark a live execution running or suspended."""
    WorkflowExecution.objects.filter(pk=execution_id).exclude(status__in=TERMINAL).exclude(
        status=status
    ).update(status=status, updated_at=timezone.now())


def finish(execution_id: str, status: str, **fields: Any) -> bool:
    """End the execution (once) and wake its parent; False if it had already ended."""
    with fenced():
        ended = WorkflowExecution.objects.filter(pk=execution_id).exclude(
            status__in=TERMINAL
        ).update(status=status, finished_at=timezone.now(), updated_at=timezone.now(), **fields)
        if ended:
            parent = (
                WorkflowExecution.objects.filter(pk=execution_id)
                .values_list("parent", flat=True)
                .first()
            )
            if parent:
                wake(parent, f"child {execution_id} {status}", key=f"child:{execution_id}")
    return bool(ended)


def find_signal(execution_id: str, name: str) -> WorkflowSignal | None:
    """The signal ``name`` sent to the execution, if any."""
    return WorkflowSignal.objects.filter(execution_id=execution_id, name=name).first()


def store_signal(execution_id: str, name: str, payload: Any) -> bool:
    """Keep the signal (the first one of a name wins) and wake the execution; True if new."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                WorkflowSignal.objects.create(execution_id=execution_id, name=name, payload=payload)
        except IntegrityError:
            return False
        wake(execution_id, f"signal {name}", key=f"signal:{name}")
    return True


def request_cancel(execution_id: str) -> bool:
    """Flag a live execution as cancelled and wake it; False if it already ended."""
    with transaction.atomic():
        flagged = WorkflowExecution.objects.filter(pk=execution_id).exclude(
            status__in=TERMINAL
        ).update(cancel_requested=True, updated_at=timezone.now())
        if flagged:
            wake(execution_id, "cancel", key="cancel")
    return bool(flagged)


def start(row: WorkflowExecution) -> None:
    """Store a new execution and its first message (an existing one is left as it is)."""
    with transaction.atomic():
        WorkflowExecution.objects.bulk_create([row], ignore_conflicts=True)
        wake(row.id, "start", key="start")


def compensable(execution_id: str) -> list[WorkflowStep]:
    """Completed activity steps not compensated yet, last first."""
    return list(
        WorkflowStep.objects.filter(
            execution_id=execution_id, kind="activity", state=DONE, compensated_at__isnull=True
        ).order_by("-seq")
    )


def compensated(step_id: int, error: str = "") -> None:
    """Record that a step's compensation ran (or gave up with ``error``)."""
    with fenced():
        WorkflowStep.objects.filter(pk=step_id, compensated_at__isnull=True).update(
            compensated_at=timezone.now(), compensation_error=error
        )
