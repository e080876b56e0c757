"""Live entity instances on a runner and the envelopes queued for each of them."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import time
from typing import Any

from .entity import Entity
from .rpc import RpcSpec
from .storage import ClaimedMessage


@dataclasses.dataclass(slots=True)
class Envelope:
    """One request on its way to a handler: from storage (``message``) or the transport."""

    spec: RpcSpec
    payload: bytes | str
    headers: dict[str, Any]
    message: ClaimedMessage | None = None
    epoch: int = 0
    future: asyncio.Future[Any] | None = None


class Active:
    """A live entity: its instance, its mailbox and how many handlers run now."""

    __slots__ = ("busy", "cls", "entity_id", "instance", "last_used", "queue", "running", "shard")

    def __init__(self, cls: type[Entity], entity_id: str, shard: tuple[str, int]) -> None:
        self.cls = cls
        self.entity_id = entity_id
        self.shard = shard
        self.instance: Entity | None = None
        self.queue: collections.deque[Envelope] | None = None
        self.running = 0  # worker tasks
        self.busy = 0  # requests being handled
        self.last_used = time.monotonic()

    def pending(self) -> int:
        """Requests queued or being handled."""
        return (len(self.queue) if self.queue else 0) + self.busy

    def push(self, envelope: Envelope) -> None:
        if self.queue is None:
            self.queue = collections.deque()
        self.queue.append(envelope)
        self.last_used = time.monotonic()

    def idle_for(self, now: float) -> float:
        """Seconds since the last request, or 0 while there is work."""
        return 0.0 if self.pending() else now - self.last_used
