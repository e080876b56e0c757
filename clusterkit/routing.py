"""Where a shard lives right now: the lease table, cached for a moment per process."""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Literal

from django.db.models.functions import Now

from .models import ShardLease

CACHE_SECONDS = 1.0


@dataclasses.dataclass(frozen=True, slots=True)
class Owner:
    """The runner holding a shard and the address of its transport."""

    runner_id: int
    address: str


class Router:
    """Looks up shard owners, caching each group's map for ``CACHE_SECONDS``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.cache: dict[str, tuple[float, dict[int, Owner]]] = {}

    def owner(self, group: str, shard: int) -> Owner | None:
        """The live owner of ``group:shard``, or ``None`` when no lease is held."""
        with self.lock:
            cached = self.cache.get(group)
        if cached is None or cached[0] < time.monotonic():
            owners = {
                shard_id: Owner(runner_id, address)
                for shard_id, runner_id, address in ShardLease.objects.filter(
                    shard_group=group, runner__isnull=False, expires_at__gt=Now()
                ).values_list("shard_id", "runner_id", "runner__address")
            }
            cached = (time.monotonic() + CACHE_SECONDS, owners)
            with self.lock:
                self.cache[group] = cached
        return cached[1].get(shard)

    def cached_owner(self, group: str, shard: int) -> Literal[False] | Owner | None:
        """The owner from the cache without touching the database (``False`` on a miss)."""
        with self.lock:
            cached = self.cache.get(group)
        if cached is None or cached[0] < time.monotonic():
            return False
        return cached[1].get(shard)

    def invalidate(self, group: str) -> None:
        """Forget what is cached for ``group`` (after a failed call)."""
        with self.lock:
            self.cache.pop(group, None)


router = Router()
