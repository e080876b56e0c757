"""Helpers of the workflow tests."""

from __future__ import annotations

import time

from clusterkit.models import Message
from jobs.workflow import WorkflowHandle
from jobs.workflow.models import WorkflowExecution
from tests.cluster.conftest import spawn  # noqa: F401  (runner subprocesses)


def until_status(handle: WorkflowHandle, *statuses: str, timeout: float = 20.0) -> str:
    """Wait until the execution has one of ``statuses``."""
    deadline = time.monotonic() + timeout
    while True:
        row = WorkflowExecution.objects.filter(pk=handle.execution_id).first()
        if row is not None and row.status in statuses:
            return row.status
        assert time.monotonic() < deadline, f"still {row.status if row else 'missing'}"
        time.sleep(0.05)


def settled(execution_id: str, timeout: float = 20.0) -> None:
    """Wait until every message to the execution has been handled."""
    pending = Message.objects.filter(
        entity_type="jobs.Workflow", entity_id=execution_id, processed=False
    )
    deadline = time.monotonic() + timeout
    while pending.exists():
        assert time.monotonic() < deadline, "messages to the execution are still pending"
        time.sleep(0.05)
