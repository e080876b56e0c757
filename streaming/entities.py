"""The stream entity: the single writer of one tenant's channel.

Every ``publish`` is a persisted ``append`` call to the entity ``"tenant/channel"``;
the entity's mailbox takes them one at a time in order, so it can number them: it
knows the last sequence number (read from the log when it is activated), writes the
event row, and only then fans it out. Sequence numbers are therefore consecutive and
every event a subscriber sees is already in the log.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import DatabaseError, IntegrityError, connections

from clusterkit import Entity, RetryPolicy, rpc
from clusterkit.threads import DatabaseThreadPool

from . import fanout, log
from .conf import streaming_settings
from .events import Event, encode_data
from .names import split_entity_id

T = TypeVar("T")
#: The streams' database work: a small pool whose threads keep their connections.
db_pool = DatabaseThreadPool(2, "streaming-db")
_RECENT_KEYS = 1000


def _in_pool(func: Callable[..., T], *args: Any) -> T:
    """Run ``func`` with a healthy connection; a broken one is closed first."""
    conn = connections["default"]
    if conn.connection is not None and conn.errors_occurred:
        if conn.is_usable():
            conn.errors_occurred = False
        else:
            conn.close()
    return func(*args)


async def _db(func: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(db_pool, _in_pool, func, *args)


class Stream(Entity):
    """The stream of one ``(tenant, channel)``; its id is ``"tenant/channel"``."""

    entity_type = "streaming.Stream"
    defect_retry_policy = RetryPolicy(max_attempts=20, base_delay=0.05, max_delay=2.0)

    def __init__(self) -> None:
        self.tenant, self.channel = split_entity_id(self.entity_id)
        self.last_seq: int | None = None
        self.appends = 0
        self.keys: collections.OrderedDict[str, int] = collections.OrderedDict()

    async def _load(self) -> int:
        last = await _db(log.head, self.tenant, self.channel)
        keys = await _db(log.recent_keys, self.tenant, self.channel, _RECENT_KEYS)
        self.keys = collections.OrderedDict(sorted(keys.items(), key=lambda kv: kv[1]))
        self.last_seq = last
        await self._prune()
        return last

    async def _prune(self) -> None:
        if self.last_seq:
            await _db(
                log.prune, self.tenant, self.channel, self.last_seq,
                int(streaming_settings.RETENTION_COUNT), streaming_settings.RETENTION_AGE,
            )

    @rpc(persisted=True, batch="append_many")
    async def append(self, event: str, data: Any = None, key: str = "") -> int:
        """Number, store and fan out one event; returns its sequence number.

        ``key`` makes a redelivered message (after a crash or a shard move) a no-op that
        returns the first sequence number instead of a duplicate event.
        """
        [seq] = await self.append_many([{"event": event, "data": data, "key": key}])
        return seq

    async def append_many(self, calls: list[dict[str, Any]]) -> list[int]:
        """The appends waiting in the mailbox at once: numbered in order, stored with one
        INSERT, then fanned out in order; their sequence numbers, in order."""
        last = self.last_seq if self.last_seq is not None else await self._load()
        seqs: list[int] = []
        rows: list[tuple[int, str, Any, str]] = []
        fresh: dict[str, int] = {}
        for call in calls:
            key = str(call.get("key") or "")
            known = (self.keys.get(key) or fresh.get(key)) if key else None
            if known is not None:
                seqs.append(known)
                continue
            last += 1
            rows.append((last, call["event"], call.get("data"), key))
            seqs.append(last)
            if key:
                fresh[key] = last
        if not rows:
            return seqs
        try:
            created = await log.ainsert_many(self.tenant, self.channel, rows)
            if created is None:
                created = await _db(log.insert_many, self.tenant, self.channel, rows)
        except (IntegrityError, DatabaseError):
            self.last_seq = None  # another writer, or a failed write: reload, then retry
            raise
        self.last_seq = last
        for key, seq in fresh.items():
            self.keys[key] = seq
        while len(self.keys) > _RECENT_KEYS:
            self.keys.popitem(last=False)
        before, self.appends = self.appends, self.appends + len(rows)
        await fanout.fan_out([
            Event(self.tenant, self.channel, seq, event, encode_data(data), at)
            for (seq, event, data, _), at in zip(rows, created, strict=True)
        ])
        every = max(1, int(streaming_settings.PRUNE_EVERY))
        if self.appends // every > before // every:
            with contextlib.suppress(DatabaseError):  # best effort; the next round catches up
                await self._prune()
        return seqs

    @rpc
    async def head(self) -> int:
        """The last sequence number (volatile: answered by the live instance)."""
        return self.last_seq if self.last_seq is not None else await self._load()
