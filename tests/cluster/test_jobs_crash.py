"""kill -9 of a runner while jobs run: every job still ends SUCCESSFUL or FAILED."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from jobs import engine
from tests.testapp import tasks
from tests.testapp.models import HandlerRun

from .harness import RunnerProcess, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.subprocess]


def test_jobs_survive_kill_9(spawn: Callable[..., RunnerProcess]) -> None:
    first = spawn("jobs-first")
    good = [tasks.slow_record.enqueue(f"job-{i}", 0.1).id for i in range(300)]
    bad = [tasks.always_fails.enqueue(f"bad-{i}").id for i in range(5)]
    ran = HandlerRun.objects.filter(entity_id="job")
    wait_until(lambda: ran.count() >= 20, 60, "some jobs to finish")
    first.kill()
    assert ran.count() < len(good), "all done before the kill"
    spawn("jobs-second")
    deadline = time.monotonic() + 120
    while True:
        finals = [engine.state(j) for j in good + bad]
        if all(s.status in ("SUCCESSFUL", "FAILED") for s in finals):
            break
        assert time.monotonic() < deadline, {s.status for s in finals}
        time.sleep(0.2)
    assert all(engine.state(j).status == "SUCCESSFUL" for j in good)
    for job_id in bad:
        final = engine.state(job_id)
        assert final.status == "FAILED"
        assert len(final.attempts) == 3 and len(final.errors) == 3
