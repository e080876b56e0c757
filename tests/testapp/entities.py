"""Entity types used across the test suite."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time

from clusterkit import Entity, RetryPolicy, context, rpc

from .models import HandlerRun

failures: dict[str, int] = {}


class Counter(Entity):
    """A counter with a persisted increment and a volatile read."""

    max_idle_time = dt.timedelta(minutes=5)

    def __init__(self) -> None:
        self.value = 0

    @rpc(persisted=True)
    async def increment(self, by: int = 1) -> int:
        self.value += by
        return self.value

    @rpc
    async def get(self) -> int:
        return self.value

    @rpc
    def get_sync(self) -> int:
        return self.value

    @rpc
    async def whoami(self) -> dict[str, object]:
        ctx = context.current()
        assert ctx.cluster is not None
        return {
            "request_id": ctx.request_id,
            "tenant_id": ctx.tenant_id,
            "traceparent": ctx.traceparent,
            "entity_id": ctx.cluster.entity_id,
            "shard_id": ctx.cluster.shard_id,
            "runner_id": ctx.cluster.runner_id,
        }

    @rpc
    async def slow(self, seconds: float) -> float:
        await asyncio.sleep(seconds)
        return seconds


class Recorder(Entity):
    """Writes a row per execution, noting when calls arrive out of send order."""

    def __init__(self) -> None:
        self.last = -1

    @rpc(persisted=True)
    def record(self, seq: int, key: str = "") -> int:
        HandlerRun.objects.create(
            entity_id=self.entity_id,
            seq=seq,
            pid=os.getpid(),
            key=key,
            out_of_order=seq <= self.last,
        )
        self.last = seq
        return seq


class Flaky(Entity):
    """Fails the first ``fail_times`` attempts of each call, then succeeds."""

    defect_retry_policy = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05)

    @rpc(persisted=True)
    async def attempt(self, tag: str, fail_times: int) -> int:
        seen = failures.get(tag, 0)
        if seen < fail_times:
            failures[tag] = seen + 1
            raise RuntimeError(f"flaky failure {seen + 1} of {tag}")
        return seen

    @rpc
    async def boom(self) -> int:
        raise ValueError("volatile boom")


class Sleeper(Entity):
    """Holds its mailbox busy, for capacity tests."""

    mailbox_capacity = 2

    @rpc
    async def nap(self, seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "rested"


class Clock(Entity):
    """Reports when it handled a scheduled call."""

    @rpc(persisted=True)
    async def tick(self, sent_at: float) -> float:
        return time.time() - sent_at


if os.environ.get("CLUSTERKIT_TEST_SCHEDULES") == "1":
    # Registered only in runner subprocesses of the cluster tests that ask for them.
    import datetime as _dt

    from clusterkit.cron import cron
    from clusterkit.singleton import singleton

    from .models import Beat

    @singleton("test-beat")
    async def beat() -> None:
        from asgiref.sync import sync_to_async

        while True:
            await sync_to_async(Beat.objects.create)(
                name="singleton", pid=os.getpid(), at=time.time()
            )
            await asyncio.sleep(0.2)

    @cron("* * * * * */2", name="test-every-2s", max_age=_dt.timedelta(seconds=30))
    def every_two_seconds(instant: _dt.datetime) -> None:
        Beat.objects.create(name="cron", instant=instant.isoformat(), pid=os.getpid(),
                            at=time.time())
class Batcher(Entity):
    """A running sum with a batched persisted rpc; it notes the size of each batch."""

    defect_retry_policy = RetryPolicy(max_attempts=2, base_delay=0.01)

    def __init__(self) -> None:
        self.total = 0
        self.batches: list[int] = []

    @rpc(persisted=True, batch="add_many")
    async def add(self, n: int) -> int:
        if n < 0:
            raise ValueError("negative")
        self.total += n
        return self.total

    async def add_many(self, calls: list[dict[str, int]]) -> list[int]:
        if any(call["n"] < 0 for call in calls):
            raise ValueError("a negative number in the batch")
        self.batches.append(len(calls))
        out = []
        for call in calls:
            self.total += call["n"]
            out.append(self.total)
        return out

    @rpc
    async def sizes(self) -> list[int]:
        return self.batches


from .tracking import *  # noqa: E402,F403
