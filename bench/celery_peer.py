"""The peer: Celery with a Redis broker (db 13), one prefork worker process.

The worker runs as ``celery -A bench.celery_peer worker --pool prefork --concurrency 1``.
Its no-op task pushes ``[start time, enqueue → start lag]`` onto a Redis list, which is
how the benchmark learns that a task began: one extra Redis round trip per task, a few
tens of microseconds against Celery's own per-task cost. No result backend.
"""

from __future__ import annotations

import json
import os
import time

import redis
from celery import Celery

BROKER = os.environ.get("BENCH_CELERY_BROKER", "redis://127.0.0.1:6379/13")
STARTS_KEY = "bench:celery:starts"

app = Celery("bench", broker=BROKER)
app.conf.update(task_ignore_result=True, worker_hijack_root_logger=False,
                broker_connection_retry_on_startup=True)
_redis = redis.Redis.from_url(BROKER)


@app.task(name="bench_noop")
def noop(sent_at: float) -> None:
    """Does nothing but note when it started and how long after its enqueue."""
    now = time.time()
    _redis.rpush(STARTS_KEY, json.dumps([now, now - sent_at]))


def clean() -> None:
    """Empty the broker database (queue, unacked messages, the start list)."""
    _redis.flushdb()


def starts() -> list[tuple[float, float]]:
    """``(start time, lag)`` of every task that began so far."""
    return [tuple(json.loads(x)) for x in _redis.lrange(STARTS_KEY, 0, -1)]  # type: ignore[misc]


def started() -> int:
    return int(_redis.llen(STARTS_KEY))
