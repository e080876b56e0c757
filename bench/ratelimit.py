"""Rate limiter benchmark: ``python -m bench.ratelimit [--n 20000] [--rounds 3]``.

Decisions per second from one process and per-decision latency on the same Redis, in
the same run, for: a raw ``EVALSHA`` loop of the GCRA script (the floor), ``ratelimit
.check`` (sync), ``ratelimit.acheck`` (async), the in-process store, and
django-ratelimit's ``is_ratelimited``. Rounds are interleaved and the best is kept.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import django
from django.conf import settings

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
PREFIX = f"bench-rl-{uuid.uuid4().hex[:8]}:"
RATE = "100000000/m"  # never refuses: every decision writes, as an allowed request does


def setup() -> None:
    """Minimal settings: django-redis as the default cache for both limiters."""
    settings.configure(
        INSTALLED_APPS=[],
        CACHES={"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": REDIS_URL}},
        RATELIMIT={"STORE": "redis", "KEY_PREFIX": PREFIX, "PRESETS": {"bench": {"rate": RATE}}},
        RATELIMIT_ENABLE=True,
        RATELIMIT_CACHE_PREFIX=PREFIX + "django-ratelimit:",
        ALLOWED_HOSTS=["*"],
        USE_TZ=True,
    )
    django.setup()


def timed(fn: Callable[[], Any], n: int) -> list[int]:
    """Per-call latencies in ns of ``n`` calls of ``fn``."""
    clock = time.perf_counter_ns
    out = []
    for _ in range(n):
        t0 = clock()
        fn()
        out.append(clock() - t0)
    return out


def atimed(fn: Callable[[], Awaitable[Any]], n: int) -> list[int]:
    """Per-call latencies in ns of ``n`` sequential awaits of ``fn()``."""

    async def run() -> list[int]:
        clock = time.perf_counter_ns
        out = []
        for _ in range(n):
            t0 = clock()
            await fn()
            out.append(clock() - t0)
        return out

    return asyncio.run(run())


def contenders() -> dict[str, Callable[[int], list[int]]]:
    """Each way of taking one decision, as ``n -> latencies``."""
    from django.test import RequestFactory
    from django.test.utils import override_settings
    from django_ratelimit.core import is_ratelimited

    from ratelimit import acheck, check
    from ratelimit.gcra import SHA
    from ratelimit.limiter import bucket
    from ratelimit.presets import get_preset
    from ratelimit.stores import RedisStore, get_store

    store = get_store()
    assert isinstance(store, RedisStore)
    client = store.client
    preset = get_preset("bench")
    key = bucket(preset, "k")
    args = (preset.interval_us, preset.tolerance_us, 1, 0)
    check("bench", "k")  # loads the script
    request = RequestFactory().get("/", REMOTE_ADDR="192.0.2.1")

    def memory(n: int) -> list[int]:
        with override_settings(RATELIMIT={"STORE": "memory", "PRESETS": {"bench": {"rate": RATE}}}):
            return timed(lambda: check("bench", "k"), n)

    return {
        "raw EVALSHA (floor)": lambda n: timed(lambda: client.evalsha(SHA, 1, key, *args), n),
        "ratelimit.check": lambda n: timed(lambda: check("bench", "k"), n),
        "ratelimit.acheck": lambda n: atimed(lambda: acheck("bench", "k"), n),
        "django-ratelimit": lambda n: timed(
            lambda: is_ratelimited(request, group="bench", key="ip", rate=RATE, increment=True), n
        ),
        "ratelimit.check (in-process)": memory,
    }


def cleanup() -> None:
    """Delete the benchmark's keys."""
    from django_redis import get_redis_connection

    client = get_redis_connection("default")
    for pattern in (PREFIX + "*", "*" + PREFIX + "*"):
        keys = list(client.scan_iter(match=pattern))
        if keys:
            client.delete(*keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="decisions per round")
    parser.add_argument("--rounds", type=int, default=3)
    opts = parser.parse_args()
    setup()
    runs = contenders()
    best: dict[str, list[int]] = {}
    try:
        for run in runs.values():
            run(min(2000, opts.n))  # warm up connections and caches
        for _ in range(opts.rounds):
            for name, run in runs.items():
                lat = run(opts.n)
                if name not in best or sum(lat) < sum(best[name]):
                    best[name] = lat
    finally:
        cleanup()
    rate = {name: len(lat) / (sum(lat) / 1e9) for name, lat in best.items()}
    floor, theirs = rate["raw EVALSHA (floor)"], rate["django-ratelimit"]
    header = f"{'implementation':30} {'decisions/s':>12} {'p50 µs':>8} {'p99 µs':>8}"
    print(f"{header} {'x raw':>7} {'x django-ratelimit':>19}")
    for name, lat in best.items():
        q = statistics.quantiles(lat, n=100)
        print(
            f"{name:30} {rate[name]:12,.0f} {q[49] / 1000:8.1f} {q[98] / 1000:8.1f} "
            f"{rate[name] / floor:7.2f} {rate[name] / theirs:19.2f}"
        )
    ours = rate["ratelimit.check"]
    print(
        f"\ntargets: check >= 0.7x raw EVALSHA: {ours / floor:.2f}x "
        f"({'ok' if ours >= 0.7 * floor else 'MISSED'}); "
        f">= 2x django-ratelimit: {ours / theirs:.2f}x ({'ok' if ours >= 2 * theirs else 'MISSED'})"
    )
    print(f"(best of {opts.rounds} interleaved rounds of {opts.n} decisions; {REDIS_URL})")


if __name__ == "__main__":
    main()
