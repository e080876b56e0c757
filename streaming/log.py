"""Reading and writing the event log (sync functions, callers pick the thread; and
:func:`ainsert_many`, the stream entities' write, on the event loop where it can be)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

from django.db import DatabaseError, IntegrityError, connections
from django.db.models import Max, Min
from django.utils import timezone

from .events import Event, encode_data
from .models import StreamEvent


def head(tenant: str, channel: str) -> int:
    """The last sequence number of a stream (0 when it has none)."""
    value = StreamEvent.objects.filter(tenant=tenant, channel=channel).aggregate(m=Max("seq"))["m"]
    return int(value or 0)


def bounds(tenant: str, channel: str) -> tuple[int, int]:
    """``(oldest, last)`` sequence numbers still in the log (``(0, 0)`` when empty)."""
    row = StreamEvent.objects.filter(tenant=tenant, channel=channel).aggregate(
        lo=Min("seq"), hi=Max("seq")
    )
    return int(row["lo"] or 0), int(row["hi"] or 0)


def fetch(tenant: str, channel: str, after: int, limit: int) -> list[Event]:
    """At most ``limit`` events with ``seq > after``, in order."""
    rows = (
        StreamEvent.objects.filter(tenant=tenant, channel=channel, seq__gt=after)
        .order_by("seq")
        .values_list("seq", "event", "data", "created_at")[:limit]
    )
    return [
        Event(tenant, channel, seq, event, encode_data(data), created.timestamp())
        for seq, event, data, created in rows
    ]


def recent_keys(tenant: str, channel: str, limit: int) -> dict[str, int]:
    """The idempotency keys of the last ``limit`` events, with their sequence numbers."""
    rows = (
        StreamEvent.objects.filter(tenant=tenant, channel=channel)
        .exclude(key="")
        .order_by("-seq")
        .values_list("key", "seq")[:limit]
    )
    return dict(rows)


Row = tuple[int, str, Any, str]  # (seq, event, data, key)


def insert_many(tenant: str, channel: str, rows: list[Row]) -> list[float]:
    """Write events (one statement, autocommit); their ``created_at`` as Unix seconds."""
    made = StreamEvent.objects.bulk_create([
        StreamEvent(tenant=tenant, channel=channel, seq=seq, event=event, data=data, key=key)
        for seq, event, data, key in rows
    ])
    return [row.created_at.timestamp() for row in made]


_connections: dict[asyncio.AbstractEventLoop, Any] = {}


async def ainsert_many(tenant: str, channel: str, rows: list[Row]) -> list[float] | None:
    """:func:`insert_many` on PostgreSQL from the event loop, over an async connection of
    the loop's own (no thread hop, no ORM on the hot path); ``None`` elsewhere: the caller
    uses :func:`insert_many` on a thread. Errors come as Django's database errors."""
    if connections["default"].vendor != "postgresql":
        return None
    import psycopg

    from clusterkit.replies import conninfo

    loop = asyncio.get_running_loop()
    for gone in [lp for lp in _connections if lp.is_closed()]:
        _connections.pop(gone).pgconn.finish()  # a finished runner's loop: close at once
    conn = _connections.get(loop)
    values = ", ".join(["(%s, %s, %s, %s, %s::jsonb, %s, now())"] * len(rows))
    params: list[Any] = []
    for seq, event, data, key in rows:
        params += [tenant, channel, seq, event, None if data is None else json.dumps(data), key]
    try:
        if conn is None or conn.closed:
            conn = _connections[loop] = await psycopg.AsyncConnection.connect(
                conninfo("default"), autocommit=True
            )
            # No WAL flush per event: the append's reply, committed durably after it,
            # flushes the WAL past the event. A database crash before that loses both,
            # and the redelivered append writes the same event at the same seq again.
            await conn.execute("SET synchronous_commit = off")
        cursor = await conn.execute(
            f"INSERT INTO {StreamEvent._meta.db_table} "
            f"(tenant, channel, seq, event, data, key, created_at) VALUES {values} "
            "RETURNING seq, created_at",
            params,
        )
        created = {int(seq): at.timestamp() for seq, at in await cursor.fetchall()}
    except psycopg.Error as exc:
        _connections.pop(loop, None)
        if conn is not None:
            await conn.close()
        error = IntegrityError if isinstance(exc, psycopg.errors.IntegrityError) else DatabaseError
        raise error(str(exc)) from exc
    return [created[seq] for seq, _, _, _ in rows]


def prune(tenant: str, channel: str, last: int, keep: int, max_age: float | None) -> int:
    """Delete events beyond the retention; the newest event always stays (it holds the seq)."""
    stream = StreamEvent.objects.filter(tenant=tenant, channel=channel, seq__lt=last)
    deleted = 0
    if keep > 0 and last - keep > 0:
        deleted += stream.filter(seq__lte=last - keep).delete()[0]
    if max_age is not None and max_age > 0:
        cutoff = timezone.now() - dt.timedelta(seconds=max_age)
        deleted += stream.filter(created_at__lt=cutoff).delete()[0]
    return deleted
