"""Durable workflows on clusterkit: ``from jobs import workflow``.

    @workflow.activity(retry=3)
    def charge(order_id: int) -> str: ...

    @workflow.workflow(name="checkout", idempotency_key="order-{order_id}")
    async def checkout(order_id: int) -> str:
        receipt = await charge(order_id)
        await workflow.sleep("cool-off", timedelta(hours=1))
        approved = await workflow.wait_signal("approved", timeout=timedelta(days=1))
        return receipt

    handle = checkout.start(7); handle.result(); handle.cancel()

See docs/workflows.md.
"""

from __future__ import annotations

from . import checks  # noqa: F401  (system checks)
from .activity import Activity, activity
from .children import child
from .definition import Workflow, execution_id_for, workflow, workflows
from .entity import WorkflowEntity
from .errors import (
    ActivityFailed,
    NonDeterministicWorkflow,
    SignalTimeout,
    WorkflowCancelled,
    WorkflowError,
    WorkflowFailed,
)
from .handle import WorkflowHandle, cancel
from .models import CANCELLED, COMPLETED, FAILED, RUNNING, SUSPENDED
from .signals import (
    asend_signal,
    asend_signal_token,
    send_signal,
    send_signal_token,
    signal_token,
    wait_signal,
)
from .timers import rate_limit, sleep


def handle(execution_id: str) -> WorkflowHandle:
    """The handle of an execution by id (the workflow need not be known)."""
    from .models import WorkflowExecution

    name = WorkflowExecution.objects.filter(pk=execution_id).values_list("name", flat=True).first()
    return WorkflowHandle(execution_id, workflows.get(name or ""))


__all__ = [
    "CANCELLED",
    "COMPLETED",
    "FAILED",
    "RUNNING",
    "SUSPENDED",
    "Activity",
    "ActivityFailed",
    "NonDeterministicWorkflow",
    "SignalTimeout",
    "Workflow",
    "WorkflowCancelled",
    "WorkflowEntity",
    "WorkflowError",
    "WorkflowFailed",
    "WorkflowHandle",
    "activity",
    "asend_signal",
    "asend_signal_token",
    "cancel",
    "child",
    "execution_id_for",
    "handle",
    "rate_limit",
    "send_signal",
    "send_signal_token",
    "signal_token",
    "sleep",
    "wait_signal",
    "workflow",
]
