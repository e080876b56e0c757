"""Reading and writing the event log (sync functions; callers pick the thread)."""

from __future__ import annotations

import datetime as dt

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


def insert(tenant: str, channel: str, seq: int, event: str, data: object, key: str) -> float:
    """Write one event (autocommit); returns its ``created_at`` as Unix seconds."""
    row = StreamEvent.objects.create(
        tenant=tenant, channel=channel, seq=seq, event=event, data=data, key=key
    )
    return row.created_at.timestamp()


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
