"""Child workflows: started by a workflow, awaited durably, cancelled with their parent.

A child's execution id is derived from the parent's and the step's position, so a
replay finds the same child rather than starting another. When the child ends it wakes
the parent (a message keyed by the child's id).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from . import history, replay
from .errors import Suspend, WorkflowCancelled, WorkflowFailed
from .models import CANCELLED, CHILD, COMPLETED, DONE, ERROR, FAILED, WAITING, WorkflowExecution

if TYPE_CHECKING:
    from .definition import Workflow


def child_id(parent_id: str, seq: int) -> str:
    return hashlib.sha256(f"{parent_id}\0child\0{seq}".encode()).hexdigest()[:32]


async def _child(run: replay.Replay, wf: Workflow, args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> Any:
    seq, row = run.step(CHILD, wf.name)
    if row is None:
        execution_id = child_id(run.execution_id, seq)
        await run.db(wf.store, execution_id, "", args, kwargs, run.execution_id)
        row = run.keep(await run.db(
            history.save_step, run.execution_id, seq, CHILD, wf.name, None, state=WAITING,
            result={"execution_id": execution_id},
        ))
    if row.state == DONE:
        return wf.decode_result(row.result.get("value") if row.result else None)
    execution_id = str((row.result or {})["execution_id"])
    if row.state == ERROR:
        _raise(execution_id, row.error_type, row.error)
    child = await run.db(WorkflowExecution.objects.get, pk=execution_id)
    if child.status == COMPLETED:
        await run.db(history.save_step, run.execution_id, seq, CHILD, wf.name, row, state=DONE,
                     result={"execution_id": execution_id, "value": child.result})
        return wf.decode_result(child.result)
    if child.status in (FAILED, CANCELLED):
        error_type = "cancelled" if child.status == CANCELLED else child.error_type
        await run.db(history.save_step, run.execution_id, seq, CHILD, wf.name, row, state=ERROR,
                     error_type=error_type, error=child.error)
        _raise(execution_id, error_type, child.error)
    raise Suspend(f"child {execution_id}")


def _raise(execution_id: str, error_type: str, error: str) -> None:
    if error_type == "cancelled":
        raise WorkflowCancelled(f"child workflow {execution_id} was cancelled")
    raise WorkflowFailed(execution_id, error_type, (error.strip().splitlines() or [""])[-1])


def child(wf: Workflow, *args: Any, **kwargs: Any) -> Any:
    """Inside a workflow: run ``wf`` as a child and wait (durably) for its result."""
    return replay.dual(_child, replay.require("workflow.child()"), wf, args, kwargs)


def children_of(execution_id: str) -> list[str]:
    """The execution ids of the children an execution started."""
    return [
        str((s.result or {}).get("execution_id"))
        for s in history.steps(execution_id)
        if s.kind == CHILD and s.result
    ]
