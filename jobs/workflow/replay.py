"""The replay of one execution: its history, and the position the body has reached.

A workflow body runs from the top on every replay. Each durable step it reaches takes
the next position; if the history has a step there it must be the same kind and name
(else :class:`NonDeterministicWorkflow`), and its stored outcome is used instead of
running it again.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from asgiref.sync import async_to_sync

from jobs.engine import in_thread

from .errors import NonDeterministicWorkflow, WorkflowCancelled
from .models import WorkflowExecution, WorkflowStep

T = TypeVar("T")

_current: contextvars.ContextVar[Replay | None] = contextvars.ContextVar(
    "clusterkit_workflow_replay", default=None
)


@dataclasses.dataclass
class Replay:
    """What a replay knows: the execution, its stored steps, and the next position."""

    execution: WorkflowExecution
    history: dict[int, WorkflowStep]
    position: int = 0
    interrupted: bool = False
    # Set when replay diverged from the history: it fails the execution even if the body
    # caught the error.
    diverged: NonDeterministicWorkflow | None = None

    @property
    def execution_id(self) -> str:
        return self.execution.id

    def step(self, kind: str, name: str) -> tuple[int, WorkflowStep | None]:
        """Take the next position for a step; its stored row, checked against the call."""
        if self.interrupted:
            raise WorkflowCancelled(f"workflow {self.execution_id} was cancelled")
        seq = self.position
        self.position += 1
        row = self.history.get(seq)
        if self.diverged is not None:
            raise self.diverged
        if row is not None and (row.kind, row.name) != (kind, name):
            self.diverged = NonDeterministicWorkflow(
                self.execution_id, seq, f"{row.kind} {row.name!r}", f"{kind} {name!r}"
            )
            raise self.diverged
        return seq, row

    def keep(self, row: WorkflowStep) -> WorkflowStep:
        """Remember a row just written."""
        self.history[row.seq] = row
        return row

    async def db(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a sync history function on a thread."""
        return await in_thread(func, *args, **kwargs)  # type: ignore[no-any-return]


def current() -> Replay | None:
    """The replay running in this task or thread, if any."""
    return _current.get()


def require(what: str) -> Replay:
    """The current replay, or a clear error for a durable call outside a workflow."""
    run = _current.get()
    if run is None:
        raise RuntimeError(f"{what} can only be used inside a workflow")
    return run


def entered(run: Replay) -> contextvars.Token[Replay | None]:
    return _current.set(run)


def left(token: contextvars.Token[Replay | None]) -> None:
    _current.reset(token)


def in_async_code() -> bool:
    """True when called on a thread running an event loop (an async workflow body)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def dual(coro_fn: Callable[..., Coroutine[Any, Any, T]], *args: Any, **kwargs: Any) -> Any:
    """An awaitable in async code; the result itself in a sync workflow body."""
    if in_async_code():
        return coro_fn(*args, **kwargs)
    return async_to_sync(coro_fn)(*args, **kwargs)
