"""Exactness under concurrency: 200 requests against a limit of 50 let exactly 50 through."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings

from ratelimit import acheck, check

from .conftest import REDIS_URL, Configure, redis_limits

FIFTY = {"fifty": {"rate": "50/h"}}


def test_threads(configure: Configure) -> None:
    configure(PRESETS=FIFTY)
    barrier = threading.Barrier(20)

    def worker(_: int) -> int:
        barrier.wait()
        return sum(check("fifty", "shared").allowed for _ in range(10))

    with ThreadPoolExecutor(20) as pool:
        assert sum(pool.map(worker, range(20))) == 50


async def test_tasks(configure: Configure) -> None:
    configure(PRESETS=FIFTY)
    decisions = await asyncio.gather(*(acheck("fifty", "shared") for _ in range(200)))
    assert sum(d.allowed for d in decisions) == 50
    assert sorted(d.remaining for d in decisions if d.allowed) == list(range(50))


def test_two_processes() -> None:
    with redis_limits(PRESETS=FIFTY) as prefix:
        start = time.time() + 3.0
        env = {**os.environ, "CLUSTERKIT_TEST_BACKEND": "embedded"}
        args = [REDIS_URL, prefix, str(start), "100", "10"]
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "tests.ratelimit.worker", *args],
                cwd=settings.BASE_DIR,
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        counts = [int(p.communicate(timeout=60)[0].strip().splitlines()[-1]) for p in procs]
        assert all(p.returncode == 0 for p in procs)
        assert sum(counts) == 50, counts
