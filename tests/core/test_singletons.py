"""Singletons and cron jobs on an in-process runner."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import threading
import time

import pytest
from django.core.exceptions import ImproperlyConfigured

from clusterkit import context
from clusterkit.cron import cron, crons
from clusterkit.runner import Runner
from clusterkit.singleton import singleton

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("clean_schedules"),
]


def wait_for(check: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_singleton_runs_once_and_restarts_after_a_crash(runner: Runner) -> None:
    runs: list[object] = []

    @singleton("crashy")
    async def crashy() -> None:
        runs.append(context.current().cluster)
        if len(runs) == 1:
            raise RuntimeError("first run crashes")
        await asyncio.Event().wait()

    wait_for(lambda: len(runs) >= 2)
    time.sleep(0.6)
    assert len(runs) == 2, "restarted once, then kept running"
    state = runs[0]
    assert state is not None and state.is_leader and state.runner_id == runner.runner_id  # type: ignore[attr-defined]
    assert "crashy" in runner.singleton_tasks


def test_sync_singleton_is_told_to_stop_when_its_shard_goes(runner: Runner) -> None:
    running = threading.Event()
    stopped = threading.Event()

    @singleton("sync-one")
    def sync_one(stop: threading.Event) -> None:
        running.set()
        stop.wait(30)
        stopped.set()

    wait_for(running.is_set)
    from clusterkit import leases

    leases.mark_draining(runner.runner_id)
    wait_for(stopped.is_set)
    assert "sync-one" not in runner.singleton_tasks


def test_cron_runs_each_instant_once(runner: Runner) -> None:
    seen: list[dt.datetime] = []

    @cron("* * * * * */1", name="each-second", max_age=dt.timedelta(seconds=30))
    async def each_second(instant: dt.datetime) -> None:
        seen.append(instant)

    wait_for(lambda: len(seen) >= 4, 15)
    assert len(seen) == len(set(seen))
    gaps = {(b - a).total_seconds() for a, b in itertools.pairwise(seen)}
    assert gaps == {1.0}


def test_cron_rejects_bad_expressions_and_zones() -> None:
    with pytest.raises(ImproperlyConfigured):
        cron("every tuesday", name="bad")
    with pytest.raises(ImproperlyConfigured):
        cron("* * * * *", name="bad-tz", tz="Mars/Olympus")


def test_late_cron_instant_is_skipped_not_replayed(runner: Runner) -> None:
    from clusterkit.cron import Cron, schedule

    ran: list[dt.datetime] = []

    @cron("0 0 1 1 *", name="yearly", max_age=dt.timedelta(seconds=5))
    def yearly(instant: dt.datetime) -> None:
        ran.append(instant)

    long_ago = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    assert Cron.client("yearly").run.call(instant=long_ago.isoformat()) == "skipped"
    assert ran == []
    schedule(crons["yearly"], dt.datetime.now(dt.UTC))  # next run scheduled from now: no burst
