"""Errors of workflows: what ``result()`` raises and what a workflow body may see."""

from __future__ import annotations


class WorkflowError(Exception):
    """Base class of the workflow errors."""


class NonDeterministicWorkflow(WorkflowError):
    """Replay reached a step that differs from the one the history has at that position."""

    def __init__(self, execution_id: str, seq: int, recorded: str, called: str) -> None:
        super().__init__(
            f"execution {execution_id}: step {seq} is {recorded} in the history, but the "
            f"workflow now calls {called}"
        )
        self.recorded, self.called, self.seq = recorded, called, seq


class WorkflowFailed(WorkflowError):
    """The execution failed: ``result()`` raises this with the original error's type."""

    def __init__(self, execution_id: str, error_type: str, message: str) -> None:
        super().__init__(f"workflow {execution_id} failed: {error_type}: {message}")
        self.execution_id, self.error_type, self.message = execution_id, error_type, message


class WorkflowCancelled(WorkflowError):
    """The execution was cancelled (``result()`` raises it; so does a cancelled child)."""


class ActivityFailed(WorkflowError):
    """An activity failed on its last attempt (raised in the body, on every replay too)."""

    def __init__(self, name: str, error_type: str, message: str) -> None:
        super().__init__(f"activity {name} failed: {error_type}: {message}")
        self.name, self.error_type, self.message = name, error_type, message


class SignalTimeout(WorkflowError, TimeoutError):
    """No signal of that name came before the wait's timeout."""


class Suspend(BaseException):  # so that a body's `except Exception` cannot swallow it
    """Internal: the body waits for something durable; the replay ends here for now."""
