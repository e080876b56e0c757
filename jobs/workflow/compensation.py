"""Compensation: undo the completed activities of a workflow that finally failed or was
cancelled, last first, each once.

The work to undo is read from the history (each completed activity step keeps its
arguments and result), not from memory, so compensation runs the same after a crash:
a step whose compensation finished has ``compensated_at`` set and is skipped.
"""

from __future__ import annotations

import asyncio
import logging

from . import history
from .activity import activities, call, decode, error_text
from .replay import Replay

logger = logging.getLogger("jobs.workflow")


async def compensate(run: Replay) -> list[str]:
    """Run the pending compensations of ``run``'s execution; the errors of those that
    failed on every attempt (they are recorded, and the others still run)."""
    errors: list[str] = []
    for step in await run.db(history.compensable, run.execution_id):
        act = activities.get(step.name)
        if act is None or act.compensate is None:
            continue
        policy = act.policy()
        attempt, error = 0, ""
        while True:
            attempt += 1
            try:
                result = decode(step.result, act.return_hint)
                await call(act.compensate, result, *step.args, **step.kwargs)
                error = ""
                break
            except Exception as exc:
                kind, _ = error_text(exc)
                error = f"{kind}: {exc}"
                if attempt >= policy.max_attempts:
                    logger.warning("compensation of %s (%s #%d) failed: %s", step.name,
                                   run.execution_id, step.seq, error)
                    errors.append(f"{step.name}: {error}")
                    break
                await asyncio.sleep(policy.delay(attempt))
        await run.db(history.compensated, step.pk, error)
    return errors
