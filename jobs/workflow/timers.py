"""Durable waits: ``sleep`` and rate-limit permits, both "wait until a stored instant".

The instant is computed once, when the body first reaches the step, and stored on it.
A wait longer than ``WORKFLOWS["SLEEP_IN_MEMORY_THRESHOLD"]`` suspends the execution and
stores a message to the execution entity due at that instant (``deliver_at``), so it
wakes on whichever runner owns the execution then; a shorter one sleeps in memory (a
crash meanwhile redelivers the message being handled, and the replay sleeps what is
left).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from typing import Any

from . import history, replay
from .conf import workflow_settings
from .errors import Suspend
from .models import DONE, PERMIT, SLEEP


def _seconds(duration: dt.timedelta | float) -> float:
    return duration.total_seconds() if isinstance(duration, dt.timedelta) else float(duration)


async def wait_until(
    run: replay.Replay, kind: str, name: str,
    compute: Callable[[], Awaitable[tuple[float, Any]]],
) -> Any:
    """The step ``kind name``: wait until the instant ``compute()`` gives the first time."""
    seq, row = run.step(kind, name)
    if row is not None and row.state == DONE:
        return row.result
    threshold = float(workflow_settings.SLEEP_IN_MEMORY_THRESHOLD)
    if row is None or row.wake_at is None:
        wake_at, result = await compute()
        durable = wake_at - time.time() > threshold
        row = run.keep(await run.db(
            history.wait_step, run.execution_id, seq, kind, name, wake_at, result, durable
        ))
    if row.state == DONE:
        return row.result
    assert row.wake_at is not None
    remaining = row.wake_at - time.time()
    if remaining > threshold:
        raise Suspend(f"{kind} {name} until {row.wake_at}")
    if remaining > 0:
        await asyncio.sleep(remaining)
    row = run.keep(await run.db(
        history.save_step, run.execution_id, seq, kind, name, row, state=DONE
    ))
    return row.result


async def _sleep(run: replay.Replay, name: str, seconds: float) -> None:
    async def instant() -> tuple[float, Any]:
        return time.time() + seconds, None

    await wait_until(run, SLEEP, name, instant)


def sleep(name: str, duration: dt.timedelta | float) -> Any:
    """Durable sleep: ``await workflow.sleep("cool-off", timedelta(hours=1))``.

    ``name`` identifies the step in the history (it is checked on replay).
    """
    return replay.dual(_sleep, replay.require("workflow.sleep()"), name, _seconds(duration))


async def _rate_limit(
    run: replay.Replay, preset: Any, key: str | None, cost: int, max_delay: float | None
) -> float:
    from ratelimit.durable import apermit_delay

    async def instant() -> tuple[float, Any]:
        delay = await apermit_delay(preset, key, cost=cost, max_delay=max_delay)
        return time.time() + delay, {"delay": delay}

    label = getattr(preset, "name", preset)
    result = await wait_until(run, PERMIT, f"{label}:{key or ''}", instant)
    return float((result or {}).get("delay", 0.0))


def rate_limit(
    preset: Any, key: str | None = None, *, cost: int = 1, max_delay: float | None = None
) -> Any:
    """Take a permit of a ``ratelimit`` preset; wait durably until it may be used.

    The delay is asked of the limiter once and stored, so a replay neither takes a second
    permit nor recomputes the wait. Returns the delay in seconds. Raises
    ``ratelimit.RateLimited`` when the delay would exceed ``max_delay``.
    """
    return replay.dual(
        _rate_limit, replay.require("workflow.rate_limit()"), preset, key, cost, max_delay
    )
