"""Workflows across real ``runworker`` subprocesses: kill -9 mid-activity, a durable sleep
across a restart, and a runner killed while compensating."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from jobs import workflow
from jobs.workflow.models import WorkflowStep
from tests.cluster.harness import RunnerProcess, wait_until
from tests.testapp import workflows as wf
from tests.testapp.models import Beat, HandlerRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.subprocess]


def test_kill_9_during_the_third_activity(spawn: Callable[..., RunnerProcess]) -> None:
    first = spawn("wf-first")
    handle = wf.five_steps.start("crash", 3, 3.0)
    runs = HandlerRun.objects.filter(entity_id="crash")
    wait_until(lambda: runs.filter(seq=3, key="start").exists(), 60, "the third activity")
    first.kill()
    assert not runs.filter(seq=3, key="done").exists(), "step 3 finished before the kill"
    spawn("wf-second")
    assert handle.result(timeout=60) == [10, 20, 30, 40, 50]
    done = list(runs.filter(key="done").order_by("id").values_list("seq", "pid"))
    assert [seq for seq, _ in done] == [1, 2, 3, 4, 5]  # 1 and 2 ran exactly once
    assert runs.filter(seq__in=[1, 2], key="start").count() == 2
    assert runs.filter(seq=3, key="start").count() == 2  # interrupted once, then again
    assert done[0][1] == first.pid and done[2][1] != first.pid


def test_durable_sleep_across_a_restart_wakes_once_on_time(
    spawn: Callable[..., RunnerProcess],
) -> None:
    first = spawn("sleep-first")
    handle = wf.sleeper.start("restart", 5.0)
    wait_until(lambda: handle.status() == workflow.SUSPENDED, 30, "the sleep")
    nap = WorkflowStep.objects.get(execution_id=handle.execution_id, kind="sleep")
    assert nap.wake_at is not None
    second = spawn("sleep-second")  # a rolling restart: the new runner is up first
    first.terminate()
    assert handle.result(timeout=30) == "rested"
    after = Beat.objects.filter(name="restart", instant="after")
    assert after.count() == 1
    woke = after.get()
    before = Beat.objects.get(name="restart", instant="before").at
    assert abs(woke.at - nap.wake_at) <= 1.0
    assert 4.0 <= woke.at - before <= 6.0
    assert woke.pid == second.pid


def test_compensations_survive_a_kill_while_compensating(
    spawn: Callable[..., RunnerProcess],
) -> None:
    first = spawn("undo-first", CLUSTERKIT_TEST_SLOW_UNDO="3")
    handle = wf.trip.start("undo-crash")
    beats = Beat.objects.filter(name="undo-crash")
    undone = WorkflowStep.objects.filter(
        execution_id=handle.execution_id, compensated_at__isnull=False
    )
    # Kill while compensation 2 runs (it takes 3 s): compensation 3 is recorded as done.
    # (A kill between a compensation's effect and its record runs it again: at least once.)
    wait_until(undone.exists, 60, "the first compensation")
    first.kill()
    assert not beats.filter(instant="undo-2").exists(), "compensation 2 ended before the kill"
    spawn("undo-second")
    with pytest.raises(workflow.WorkflowFailed):
        handle.result(timeout=60)
    marks = list(beats.order_by("at").values_list("instant", flat=True))
    assert marks == ["book-1", "book-2", "book-3", "undo-3", "undo-2", "undo-1"]
    steps = WorkflowStep.objects.filter(execution_id=handle.execution_id, state="done")
    assert all(s.compensated_at is not None for s in steps)
