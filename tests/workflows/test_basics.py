"""Workflows on an in-process runner: activities, replay, idempotency, determinism."""

from __future__ import annotations

import pytest

from clusterkit.runner import Runner
from jobs import workflow
from jobs.workflow.models import WorkflowExecution, WorkflowStep
from tests.testapp import workflows as wf
from tests.testapp.models import HandlerRun

from .conftest import settled, until_status

pytestmark = pytest.mark.django_db(transaction=True)


def test_activities_run_once_and_results_are_stored(runner: Runner) -> None:
    handle = wf.five_steps.start("plain")
    assert handle.result(timeout=30) == [10, 20, 30, 40, 50]
    assert handle.status() == workflow.COMPLETED
    done = HandlerRun.objects.filter(entity_id="plain", key="done")
    assert sorted(done.values_list("seq", flat=True)) == [1, 2, 3, 4, 5]
    steps = handle.steps()
    assert [(s.kind, s.name.rsplit(".", 1)[-1], s.state) for s in steps] == [
        ("activity", "step", "done")
    ] * 5
    assert [s.result for s in steps] == [10, 20, 30, 40, 50]
    assert all(len(s.attempts) == 1 for s in steps)


def test_replay_returns_stored_results(runner: Runner) -> None:
    handle = wf.five_steps.start("replayed")
    handle.result(timeout=30)
    # Replay a finished history: every step returns its stored result, nothing runs again.
    WorkflowExecution.objects.filter(pk=handle.execution_id).update(status="running")
    handle.resume()
    settled(handle.execution_id)
    assert handle.status() == "completed"
    assert handle.result() == [10, 20, 30, 40, 50]
    assert HandlerRun.objects.filter(entity_id="replayed", key="done").count() == 5


def test_same_idempotency_key_gives_the_same_execution(runner: Runner) -> None:
    first = wf.five_steps.start("once")
    second = wf.five_steps.start("once")
    assert first.execution_id == second.execution_id
    assert first.execution_id == workflow.execution_id_for("test.five_steps", "five-once")
    assert second.result(timeout=30) == [10, 20, 30, 40, 50]
    third = wf.five_steps.start("once")
    assert third.result(timeout=5) == [10, 20, 30, 40, 50]
    assert WorkflowExecution.objects.filter(name="test.five_steps").count() == 1
    assert HandlerRun.objects.filter(entity_id="once", key="done").count() == 5
    other = wf.five_steps.with_key("explicit").start("once")
    assert other.execution_id != first.execution_id


@pytest.mark.parametrize("flow", ["fickle", "fickle_catching"])
def test_non_determinism_fails_the_execution_naming_both(runner: Runner, flow: str) -> None:
    wf.branch["first"] = "a"
    try:
        handle = getattr(wf, flow).start("x")
        until_status(handle, "suspended")
        wf.branch["first"] = "b"  # the code changed while the execution slept
        with pytest.raises(workflow.WorkflowFailed) as failed:
            handle.result(timeout=20)
    finally:
        wf.branch["first"] = "a"
    assert failed.value.error_type.endswith("NonDeterministicWorkflow")
    row = WorkflowExecution.objects.get(pk=handle.execution_id)
    assert "pick_a" in row.error and "pick_b" in row.error


def test_failed_activity_is_retried_then_compensations_run_in_reverse(runner: Runner) -> None:
    from tests.testapp.models import Beat

    handle = wf.trip.start("inproc")
    with pytest.raises(workflow.WorkflowFailed) as failed:
        handle.result(timeout=30)
    assert failed.value.error_type.endswith("ActivityFailed")
    marks = list(Beat.objects.filter(name="inproc").order_by("at").values_list("instant",
                                                                               flat=True))
    assert marks == ["book-1", "book-2", "book-3", "undo-3", "undo-2", "undo-1"]
    broken = WorkflowStep.objects.get(execution_id=handle.execution_id, seq=3)
    assert broken.state == "error" and len(broken.attempts) == 2
    assert all("step 4 is broken" in a["error"] for a in broken.attempts)
    done = WorkflowStep.objects.filter(execution_id=handle.execution_id, state="done")
    assert all(s.compensated_at is not None for s in done)


def test_an_activity_retried_after_a_failure_records_both_attempts(runner: Runner) -> None:
    handle = wf.flaky_flow.start("retry")
    assert handle.result(timeout=20) == 5
    (step,) = handle.steps()
    assert step.state == "done" and step.result == {"id": "retry", "amount": 5}
    assert [bool(a.get("error")) for a in step.attempts] == [True, False]
    assert "ConnectionError: first try" in step.attempts[0]["error"]
    assert wf.flaky_calls["retry"] == 2


def test_sync_workflow(runner: Runner) -> None:
    handle = wf.sync_flow.start("s")
    until_status(handle, "suspended")
    assert handle.result(timeout=20) == 60
    assert [s.kind for s in handle.steps()] == ["activity"] * 2 + ["sleep"] * 2 + ["activity"]
    done = HandlerRun.objects.filter(entity_id="s", key="done")
    assert sorted(done.values_list("seq", flat=True)) == [1, 2, 3]


async def test_async_start_and_result(runner: Runner) -> None:
    handle = await wf.five_steps.astart("async")
    assert await handle.aresult(timeout=30) == [10, 20, 30, 40, 50]
    assert await handle.astatus() == "completed"


def test_activity_outside_a_workflow_is_a_plain_call(db: None) -> None:
    assert wf.step("outside", 1) == 10
    with pytest.raises(RuntimeError):
        workflow.sleep("nap", 1)


def test_a_runner_without_the_shard_lease_cannot_write_steps(runner: Runner) -> None:
    from clusterkit import context
    from clusterkit.sharding import shard_for
    from jobs.workflow import history

    handle = wf.five_steps.start("fenced")
    handle.result(timeout=30)
    eid = handle.execution_id
    shard = shard_for(eid)
    zombie = context.RequestContext(cluster=context.ClusterState(
        "default", shard, runner.runner_id + 1000, "jobs.Workflow", eid))
    with context.use(zombie), pytest.raises(history.Fenced):
        history.save_step(eid, 99, "activity", "late", None, state="done", result=1)
    with context.use(zombie), pytest.raises(history.Fenced):
        history.finish(eid, "failed")
    assert not WorkflowStep.objects.filter(execution_id=eid, seq=99).exists()
    owner = context.RequestContext(cluster=context.ClusterState(
        "default", shard, runner.runner_id, "jobs.Workflow", eid))
    with context.use(owner):  # the lease holder may write
        assert history.save_step(eid, 99, "activity", "late", None, state="done").seq == 99
