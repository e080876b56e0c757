"""Signals: named durable values a workflow waits for, sent from anywhere.

A signal is stored (``WorkflowSignal``, one per execution and name, the first one wins)
together with a message that wakes the execution, in one transaction. The wait reads
the stored signal, so a signal sent before the workflow waits — even before it starts —
is found when it gets there: nothing depends on the workflow being suspended at the
moment the signal lands.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import time
from typing import Any

import msgspec
from asgiref.sync import sync_to_async

from . import history, replay
from .errors import SignalTimeout, Suspend
from .models import DONE, SIGNAL, TIMED_OUT, WAITING


def token_for(execution_id: str, name: str) -> str:
    """The token that completes signal ``name`` of an execution (URL-safe, no secret)."""
    raw = json.dumps([execution_id, name], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def parse_token(token: str) -> tuple[str, str]:
    """``(execution_id, name)`` of a token; ``ValueError`` if it is not one."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        execution_id, name = json.loads(raw)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a signal token: {token!r}") from exc
    if not isinstance(execution_id, str) or not isinstance(name, str):
        raise ValueError(f"not a signal token: {token!r}")
    return execution_id, name


def signal_token(name: str) -> str:
    """Inside a workflow: the token of its signal ``name`` (to hand to someone else)."""
    return token_for(replay.require("workflow.signal_token()").execution_id, name)


def send_signal(execution_id: str, name: str, payload: Any = None) -> bool:
    """Complete signal ``name`` of an execution; False if it had been sent already."""
    return history.store_signal(execution_id, name, msgspec.to_builtins(payload))


def send_signal_token(token: str, payload: Any = None) -> bool:
    """Complete the signal a token names."""
    return send_signal(*parse_token(token), payload)


async def asend_signal(execution_id: str, name: str, payload: Any = None) -> bool:
    """Async :func:`send_signal`."""
    return await sync_to_async(send_signal)(execution_id, name, payload)


async def asend_signal_token(token: str, payload: Any = None) -> bool:
    """Async :func:`send_signal_token`."""
    return await sync_to_async(send_signal_token)(token, payload)


async def _wait(run: replay.Replay, name: str, timeout: float | None) -> Any:
    seq, row = run.step(SIGNAL, name)
    if row is not None and row.state == DONE:
        return row.result
    if row is not None and row.state == TIMED_OUT:
        raise SignalTimeout(f"no signal {name!r} within the timeout")
    found = await run.db(history.find_signal, run.execution_id, name)
    if found is not None:
        row = run.keep(await run.db(
            history.save_step, run.execution_id, seq, SIGNAL, name, row, state=DONE,
            result=found.payload,
        ))
        return row.result
    if row is None:
        if timeout is None:
            row = run.keep(await run.db(
                history.save_step, run.execution_id, seq, SIGNAL, name, None, state=WAITING
            ))
        else:
            row = run.keep(await run.db(
                history.wait_step, run.execution_id, seq, SIGNAL, name, time.time() + timeout,
                None, True,
            ))
    if row.state == DONE:
        return row.result
    if row.wake_at is None or row.wake_at - time.time() > _threshold():
        raise Suspend(f"signal {name}")
    # Due (or nearly: the timer may fire a little early by this clock): one last look.
    await asyncio.sleep(max(0.0, row.wake_at - time.time()))
    found = await run.db(history.find_signal, run.execution_id, name)
    row = run.keep(await run.db(
        history.save_step, run.execution_id, seq, SIGNAL, name, row,
        state=DONE if found is not None else TIMED_OUT,
        result=found.payload if found is not None else None,
    ))
    if row.state == DONE:
        return row.result
    raise SignalTimeout(f"no signal {name!r} within the timeout")


def _threshold() -> float:
    from .conf import workflow_settings

    return float(workflow_settings.SLEEP_IN_MEMORY_THRESHOLD)


def wait_signal(name: str, timeout: dt.timedelta | float | None = None) -> Any:
    """Wait (durably) for signal ``name``; its payload. ``SignalTimeout`` after ``timeout``."""
    seconds = timeout.total_seconds() if isinstance(timeout, dt.timedelta) else timeout
    return replay.dual(_wait, replay.require("workflow.wait_signal()"), name, seconds)
