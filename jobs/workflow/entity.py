"""The execution entity: ``jobs.Workflow/<execution id>``, hosted by whichever runner
owns the id's shard.

Its one persisted rpc, ``resume``, replays the body against the history; every message
to it (start, a sleep's timer, a signal, a child's end, cancel) is a ``resume`` with its
own primary key. A runner killed mid-replay leaves the message unprocessed, and the new
owner of the shard replays it: completed steps return their stored results, the step in
progress runs again. The volatile, non-exclusive ``interrupt`` stops a running body at
once when it is cancelled.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgspec

from clusterkit import Entity, RetryPolicy, rpc

from . import children, history, replay
from .activity import error_text
from .compensation import compensate
from .conf import workflow_settings
from .errors import Suspend
from .models import CANCELLED, COMPLETED, FAILED, RUNNING, SUSPENDED, TERMINAL

ENTITY_TYPE = history.ENTITY_TYPE
logger = logging.getLogger("jobs.workflow")


class ShardLost(RuntimeError):
    """A replay stopped because its runner no longer holds the execution's shard."""


class WorkflowEntity(Entity):
    """Replays one execution, one message at a time."""

    entity_type = ENTITY_TYPE
    max_idle_time = 30.0
    # A replay that breaks on infrastructure (database down) is retried; the body's own
    # errors are outcomes, not defects.
    defect_retry_policy = RetryPolicy(max_attempts=10, base_delay=0.2, max_delay=5.0)

    @classmethod
    def group_for(cls, entity_id: str) -> str:
        return str(workflow_settings.SHARD_GROUP)

    def __init__(self) -> None:
        self.run: replay.Replay | None = None
        self.task: asyncio.Future[Any] | None = None

    @rpc(persisted=True)
    async def resume(self, reason: str = "") -> str:
        """Replay the execution; what it is now (``suspended``, ``completed`` …)."""
        try:
            return await execute(self)
        except history.Fenced as exc:  # the runner drops the result of a lost shard
            raise ShardLost(str(exc)) from None

    @rpc(exclusive=False)
    async def interrupt(self) -> bool:
        """Stop the running body now (it was flagged cancelled); False if none runs here."""
        if self.run is None or self.task is None or self.task.done():
            return False
        self.run.interrupted = True
        self.task.cancel()
        return True


async def execute(entity: WorkflowEntity) -> str:
    """One replay of the entity's execution, up to its end or its next durable wait."""
    from .definition import workflows

    execution, steps = await replay.in_thread(history.load, entity.entity_id)
    if execution is None:
        return "unknown"
    if execution.status in TERMINAL:
        return execution.status
    run = replay.Replay(execution, steps)
    if execution.cancel_requested:
        return await _end_cancelled(run)
    wf = workflows.get(execution.name)
    if wf is None:  # deployed elsewhere but not here: a defect, retried, then left stored
        raise LookupError(f"workflow {execution.name!r} is not registered on this runner")
    if execution.status != RUNNING:
        await run.db(history.set_status, execution.id, RUNNING)
    token = replay.entered(run)
    try:
        entity.run = run
        entity.task = asyncio.ensure_future(wf.invoke(list(execution.args), execution.kwargs))
    finally:
        replay.left(token)
    try:
        value = await entity.task
        if run.diverged is not None:  # the body caught it: it still fails the execution
            raise run.diverged
    except Suspend:
        if run.diverged is not None:
            return await _end_failed(run, run.diverged)
        await run.db(history.set_status, execution.id, SUSPENDED)
        return SUSPENDED
    except asyncio.CancelledError:
        if not run.interrupted:  # the runner itself is stopping: the message is redelivered
            raise
        return await _end_cancelled(run)
    except Exception as exc:  # a cancelled child's WorkflowCancelled fails the parent
        if run.interrupted:
            return await _end_cancelled(run)
        return await _end_failed(run, run.diverged or exc)
    finally:
        entity.run = entity.task = None
    await run.db(history.finish, execution.id, COMPLETED, result=msgspec.to_builtins(value))
    return COMPLETED


async def _end_failed(run: replay.Replay, exc: BaseException) -> str:
    kind, text = error_text(exc)
    logger.info("workflow %s failed: %s; compensating", run.execution_id, kind)
    errors = await compensate(run)
    if errors:
        text += "\ncompensations that failed:\n" + "\n".join(errors)
    await run.db(history.finish, run.execution_id, FAILED, error_type=kind, error=text)
    return FAILED


async def _end_cancelled(run: replay.Replay) -> str:
    logger.info("workflow %s cancelled; compensating", run.execution_id)
    from .handle import cancel

    for child in await run.db(children.children_of, run.execution_id):
        await run.db(cancel, child)
    errors = await compensate(run)
    await run.db(
        history.finish, run.execution_id, CANCELLED, error_type="cancelled",
        error="\n".join(errors),
    )
    return CANCELLED
