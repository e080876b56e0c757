"""Workflows and activities of the workflow tests (discovered like ``tasks.py``).

Activities write rows (``HandlerRun`` for steps, ``Beat`` for timed marks and
compensations), so tests count what really ran, in which process and when.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
import time

from clusterkit import RetryPolicy
from jobs import workflow
from ratelimit.presets import build_preset

from .models import Beat, HandlerRun

FAST = RetryPolicy(max_attempts=2, base_delay=0.05, max_delay=0.1, jitter=False)
# Flipped by the non-determinism test between two replays (in-process runner only).
branch = {"first": "a"}
PERMITS = build_preset("workflow-test", {"rate": "1/3s", "key": "ip"})


@workflow.activity(retry=FAST)
def step(tag: str, n: int, seconds: float = 0.0) -> int:
    HandlerRun.objects.create(entity_id=tag, seq=n, pid=os.getpid(), key="start")
    time.sleep(seconds)
    HandlerRun.objects.create(entity_id=tag, seq=n, pid=os.getpid(), key="done")
    return n * 10


@workflow.workflow(name="test.five_steps", idempotency_key="five-{tag}")
async def five_steps(tag: str, slow: int = 0, seconds: float = 0.0) -> list[int]:
    results = []
    for n in range(1, 6):
        results.append(await step(tag, n, seconds if n == slow else 0.0))
    return results


@workflow.activity
async def mark(tag: str, what: str) -> float:
    now = time.time()
    await asyncio.to_thread(Beat.objects.create, name=tag, instant=what, pid=os.getpid(), at=now)
    return now


@mark.compensation
async def unmark(result: float, tag: str, what: str) -> None:
    await asyncio.to_thread(
        Beat.objects.create, name=tag, instant=f"undo-{what}", pid=os.getpid(), at=time.time()
    )


@workflow.workflow(name="test.sleeper", idempotency_key="sleep-{tag}")
async def sleeper(tag: str, seconds: float) -> str:
    await mark(tag, "before")
    await workflow.sleep("nap", dt.timedelta(seconds=seconds))
    await mark(tag, "after")
    return "rested"


@workflow.workflow(name="test.waiter", idempotency_key="wait-{tag}")
async def waiter(tag: str, timeout: float | None = None, busy: float = 0.0) -> str:
    if busy:
        await step(tag, 1, busy)  # a signal may land while this runs (Effect #6318)
    try:
        value = await workflow.wait_signal("go", timeout=timeout)
    except workflow.SignalTimeout:
        return "timed out"
    return f"got {value}"


@workflow.activity(retry=FAST)
def book(tag: str, n: int) -> str:
    if n == 4:
        raise RuntimeError(f"step {n} is broken")
    Beat.objects.create(name=tag, instant=f"book-{n}", pid=os.getpid(), at=time.time())
    return f"booking-{n}"


@book.compensation
def unbook(result: str, tag: str, n: int) -> None:
    if n == 2:
        time.sleep(float(os.environ.get("CLUSTERKIT_TEST_SLOW_UNDO", "0")))
    assert result == f"booking-{n}"
    Beat.objects.create(name=tag, instant=f"undo-{n}", pid=os.getpid(), at=time.time())


@workflow.workflow(name="test.trip", idempotency_key="trip-{tag}")
async def trip(tag: str) -> None:
    for n in range(1, 5):
        await book(tag, n)


@workflow.activity(retry=1)
async def busy(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "done"


@workflow.workflow(name="test.interruptible", idempotency_key="busy-{tag}")
async def interruptible(tag: str, seconds: float) -> str:
    await mark(tag, "first")
    return str(await busy(seconds))


@workflow.workflow(name="test.parent", idempotency_key="parent-{tag}")
async def parent(tag: str) -> str:
    await mark(tag, "parent")
    return str(await sleeper(f"{tag}-child", 60.0))


@workflow.activity
def pick_a(tag: str) -> str:
    return "a"


@workflow.activity
def pick_b(tag: str) -> str:
    return "b"


@workflow.workflow(name="test.fickle", idempotency_key="fickle-{tag}")
async def fickle(tag: str) -> str:
    first = await (pick_a(tag) if branch["first"] == "a" else pick_b(tag))
    await workflow.sleep("gap", 1.5)
    return str(first)


@workflow.workflow(name="test.fickle_catching", idempotency_key="fickle-catch-{tag}")
async def fickle_catching(tag: str) -> str:
    try:
        first = await (pick_a(tag) if branch["first"] == "a" else pick_b(tag))
    except Exception:  # swallowing everything must not hide a diverged replay
        first = "caught"
    await workflow.sleep("gap", 1.5)
    return str(first)


@workflow.workflow(name="test.limited", idempotency_key="limited-{tag}")
async def limited(tag: str, key: str) -> float:
    delay = await workflow.rate_limit(PERMITS, key)
    await mark(tag, "permitted")
    return float(delay)


@dataclasses.dataclass
class Receipt:
    id: str
    amount: int


flaky_calls: dict[str, int] = {}


@workflow.activity(retry=FAST)
def flaky(tag: str) -> Receipt:
    flaky_calls[tag] = flaky_calls.get(tag, 0) + 1
    if flaky_calls[tag] == 1:
        raise ConnectionError("first try")
    return Receipt(tag, 5)


@workflow.workflow(name="test.flaky_flow", idempotency_key="flaky-{tag}")
async def flaky_flow(tag: str) -> int:
    receipt = await flaky(tag)
    assert isinstance(receipt, Receipt)  # stored as JSON, given back as its annotation
    return receipt.amount


@workflow.workflow(name="test.sync_flow", idempotency_key="sync-{tag}")
def sync_flow(tag: str) -> int:
    total = step(tag, 1) + step(tag, 2)
    workflow.sleep("short", 0.1)  # in memory
    workflow.sleep("long", 1.2)  # suspends: the replay ends inside the sync body
    return int(total) + int(step(tag, 3))
