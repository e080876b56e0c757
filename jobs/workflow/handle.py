"""The handle of an execution: its status and result, cancel it, signal it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async

from clusterkit import ClusterError, Timeout

from . import history, signals
from .conf import workflow_settings
from .errors import WorkflowCancelled, WorkflowFailed
from .models import CANCELLED, COMPLETED, FAILED, TERMINAL, WorkflowExecution, WorkflowStep

if TYPE_CHECKING:
    from .definition import Workflow


class WorkflowHandle:
    """One execution, by id; every method reads or writes storage (sync, or ``a``-async)."""

    def __init__(self, execution_id: str, wf: Workflow | None = None) -> None:
        self.execution_id = execution_id
        self.workflow = wf

    def __repr__(self) -> str:
        return f"<WorkflowHandle {self.execution_id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WorkflowHandle) and other.execution_id == self.execution_id

    def __hash__(self) -> int:
        return hash(self.execution_id)

    def execution(self) -> WorkflowExecution:
        """The execution row (``WorkflowExecution.DoesNotExist`` if there is none)."""
        return WorkflowExecution.objects.get(pk=self.execution_id)

    def status(self) -> str:
        """``running``, ``suspended``, ``completed``, ``failed`` or ``cancelled``."""
        return self.execution().status

    async def astatus(self) -> str:
        return await sync_to_async(self.status)()

    def steps(self) -> list[WorkflowStep]:
        """The history: one row per activity, sleep, signal, permit or child, in order."""
        return history.steps(self.execution_id)

    def _outcome(self, row: WorkflowExecution) -> Any:
        if row.status == COMPLETED:
            return self.workflow.decode_result(row.result) if self.workflow else row.result
        if row.status == CANCELLED:
            raise WorkflowCancelled(f"workflow {self.execution_id} was cancelled")
        assert row.status == FAILED
        last = (row.error.strip().splitlines() or [""])[-1]
        raise WorkflowFailed(self.execution_id, row.error_type, last)

    def result(self, timeout: float | None = 60.0) -> Any:
        """Wait for the end; the return value, or ``WorkflowFailed``/``WorkflowCancelled``
        (``clusterkit.Timeout`` if it has not ended within ``timeout`` seconds)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for pause in _pauses():
            row = self.execution()
            if row.status in TERMINAL:
                return self._outcome(row)
            if deadline is not None and time.monotonic() + pause > deadline:
                raise Timeout(f"workflow {self.execution_id} is still {row.status}")
            time.sleep(pause)
        raise AssertionError("unreachable")

    async def aresult(self, timeout: float | None = 60.0) -> Any:
        """Async :meth:`result`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for pause in _pauses():
            row = await sync_to_async(self.execution)()
            if row.status in TERMINAL:
                return self._outcome(row)
            if deadline is not None and time.monotonic() + pause > deadline:
                raise Timeout(f"workflow {self.execution_id} is still {row.status}")
            await asyncio.sleep(pause)
        raise AssertionError("unreachable")

    def cancel(self) -> bool:
        """Cancel the execution (and its children): compensations run, it ends
        ``cancelled``. False if it had already ended."""
        return cancel(self.execution_id)

    async def acancel(self) -> bool:
        return await sync_to_async(cancel)(self.execution_id)

    def signal(self, name: str, payload: Any = None) -> bool:
        """Send signal ``name``; False if one of that name was sent before."""
        return signals.send_signal(self.execution_id, name, payload)

    async def asignal(self, name: str, payload: Any = None) -> bool:
        return await signals.asend_signal(self.execution_id, name, payload)

    def signal_token(self, name: str) -> str:
        """A token that completes signal ``name`` (``workflow.send_signal_token``)."""
        return signals.token_for(self.execution_id, name)

    def resume(self) -> None:
        """Make the execution replay now (after fixing what made it stall)."""
        history.wake(self.execution_id, "resume")


def _pauses() -> Any:
    pause, top = 0.01, float(workflow_settings.RESULT_POLL_INTERVAL)
    while True:
        yield pause
        pause = min(top, pause * 1.5)


def cancel(execution_id: str) -> bool:
    """Flag the execution cancelled (durably), then interrupt it where it runs now."""
    if not history.request_cancel(execution_id):
        return False
    from .entity import WorkflowEntity

    # A running body stops now; a suspended one is woken by the stored message.
    with contextlib.suppress(ClusterError):
        WorkflowEntity.client(execution_id).interrupt.options(timeout=2.0).call()
    return True
