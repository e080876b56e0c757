"""Entity types the core benchmarks drive; the handlers do no work of their own."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

from clusterkit import Entity, rpc


class BenchCounter(Entity):
    """Throughput and volatile round trips: a counter, as in the README."""

    max_idle_time = dt.timedelta(minutes=10)

    def __init__(self) -> None:
        self.value = 0

    @rpc(persisted=True)
    async def increment(self, by: int = 1) -> int:
        self.value += by
        return self.value

    @rpc
    async def get(self) -> int:
        return self.value


class BenchClock(Entity):
    """Latency: the handler's first act is reading the clock the sender stamped."""

    @rpc(persisted=True)
    async def stamp(self, sent_at: float) -> float:
        return time.time() - sent_at


class BenchIdle(Entity):
    """Memory: touched once, then kept resident (a long ``max_idle_time``)."""

    max_idle_time = dt.timedelta(hours=2)

    def __init__(self) -> None:
        self.touched = 0

    @rpc(persisted=True)
    async def touch(self) -> int:
        self.touched += 1
        return self.touched

    @rpc
    async def resident(self) -> int:
        """Live entities on the runner answering (a check that the 100,000 stayed)."""
        from clusterkit.runner import local_runners

        return sum(len(runner.active) for runner in local_runners.values())


class BenchSlow(Entity):
    """Failover: a handler that takes a little time, so a backlog outlives a kill -9."""

    @rpc(persisted=True)
    async def work(self, n: int) -> int:
        await asyncio.sleep(0.002)
        return n
