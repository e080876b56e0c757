"""Durable sleep, signals (before, during and after the wait, and never), cancellation,
child workflows and rate-limit permits, on an in-process runner."""

from __future__ import annotations

import time

import pytest

from clusterkit.models import Message
from clusterkit.runner import Runner
from jobs import workflow
from jobs.workflow.models import WorkflowExecution, WorkflowSignal, WorkflowStep
from tests.testapp import workflows as wf
from tests.testapp.models import Beat, HandlerRun

from .conftest import until_status

pytestmark = pytest.mark.django_db(transaction=True)


def marks(tag: str) -> list[str]:
    return list(Beat.objects.filter(name=tag).order_by("at").values_list("instant", flat=True))


def test_long_sleep_suspends_and_a_scheduled_message_wakes_it(runner: Runner) -> None:
    handle = wf.sleeper.start("durable", 2.0)
    until_status(handle, "suspended")
    nap = WorkflowStep.objects.get(execution_id=handle.execution_id, kind="sleep")
    assert nap.state == "waiting" and nap.wake_at is not None
    timer = Message.objects.get(entity_id=handle.execution_id, deliver_at__isnull=False)
    assert abs(timer.deliver_at / 1000 - nap.wake_at) < 0.01
    assert handle.result(timeout=20) == "rested"
    after = Beat.objects.get(name="durable", instant="after")
    assert 0 <= after.at - nap.wake_at < 1.0
    assert marks("durable") == ["before", "after"]


def test_short_sleep_stays_in_memory(runner: Runner) -> None:
    handle = wf.sleeper.start("short", 0.3)
    assert handle.result(timeout=20) == "rested"
    assert not Message.objects.filter(
        entity_id=handle.execution_id, deliver_at__isnull=False
    ).exists()
    before, after = (Beat.objects.get(name="short", instant=w).at for w in ("before", "after"))
    assert after - before >= 0.3


def test_signal_after_the_wait(runner: Runner) -> None:
    handle = wf.waiter.start("after")
    until_status(handle, "suspended")
    assert handle.signal("go", {"n": 1}) is True
    assert handle.signal("go", {"n": 2}) is False  # the first one of a name wins
    assert handle.result(timeout=20) == "got {'n': 1}"


def test_signal_sent_before_the_execution_starts_is_kept(runner: Runner) -> None:
    """Effect #8238: a signal must not be lost because nobody waited for it yet."""
    execution_id = workflow.execution_id_for("test.waiter", "wait-early")
    assert workflow.send_signal(execution_id, "go", 7) is True
    assert WorkflowSignal.objects.filter(execution_id=execution_id, name="go").exists()
    handle = wf.waiter.start("early")
    assert handle.execution_id == execution_id
    assert handle.result(timeout=20) == "got 7"


def test_signal_landing_while_the_body_runs_is_not_lost(runner: Runner) -> None:
    """Effect #6318: the signal arrives before the workflow reaches its wait."""
    handle = wf.waiter.start("during", None, 1.0)
    deadline = time.monotonic() + 20
    while not HandlerRun.objects.filter(entity_id="during", key="start").exists():
        assert time.monotonic() < deadline  # wait until the 1-second activity runs
        time.sleep(0.02)
    assert not WorkflowStep.objects.filter(execution_id=handle.execution_id,
                                           kind="signal").exists()
    assert workflow.send_signal_token(handle.signal_token("go"), "token") is True
    assert not HandlerRun.objects.filter(entity_id="during", key="done").exists()
    assert handle.result(timeout=20) == "got token"


def test_signal_never_sent_times_out(runner: Runner) -> None:
    handle = wf.waiter.start("never", 1.5)
    until_status(handle, "suspended")
    started = time.monotonic()
    assert handle.result(timeout=20) == "timed out"
    assert time.monotonic() - started < 3.0
    step = WorkflowStep.objects.get(execution_id=handle.execution_id, kind="signal")
    assert step.state == "timed_out"
    # A late signal is kept but changes nothing.
    assert handle.signal("go", 1) is True
    assert handle.result(timeout=5) == "timed out"


def test_tokens_are_checked() -> None:
    with pytest.raises(ValueError):
        workflow.send_signal_token("not-a-token")


def test_cancel_while_sleeping_compensates_and_ends_cancelled(runner: Runner) -> None:
    handle = wf.sleeper.start("nap-cancel", 60.0)
    until_status(handle, "suspended")
    started = time.monotonic()
    assert handle.cancel() is True
    with pytest.raises(workflow.WorkflowCancelled):
        handle.result(timeout=20)
    assert time.monotonic() - started < 5
    assert handle.status() == "cancelled"
    assert marks("nap-cancel") == ["before", "undo-before"]
    assert handle.cancel() is False


def test_cancel_interrupts_a_running_activity(runner: Runner) -> None:
    handle = wf.interruptible.start("running", 30.0)
    deadline = time.monotonic() + 20
    while not Beat.objects.filter(name="running", instant="first").exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    until_status(handle, "running")
    started = time.monotonic()
    assert handle.cancel() is True
    with pytest.raises(workflow.WorkflowCancelled):
        handle.result(timeout=20)
    assert time.monotonic() - started < 5  # not the 30 s the activity would take
    assert marks("running") == ["first", "undo-first"]


def parent_and_child(tag: str) -> tuple[workflow.WorkflowHandle, workflow.WorkflowHandle]:
    """A parent waiting for its sleeping child."""
    parent = wf.parent.start(tag)
    until_status(parent, "suspended")
    child_step = WorkflowStep.objects.get(execution_id=parent.execution_id, kind="child")
    child = workflow.handle(child_step.result["execution_id"])
    until_status(child, "suspended")
    return parent, child


def test_children_are_cancelled_with_their_parent(runner: Runner) -> None:
    parent, child = parent_and_child("family")
    assert WorkflowExecution.objects.get(pk=child.execution_id).parent == parent.execution_id
    parent.cancel()
    until_status(parent, "cancelled")
    until_status(child, "cancelled")
    with pytest.raises(workflow.WorkflowCancelled):
        child.result(timeout=5)
    assert marks("family-child") == ["before", "undo-before"]


def test_a_parent_whose_child_is_cancelled_fails(runner: Runner) -> None:
    parent, child = parent_and_child("orphan")
    assert child.cancel() is True
    with pytest.raises(workflow.WorkflowFailed) as failed:
        parent.result(timeout=20)
    assert failed.value.error_type.endswith("WorkflowCancelled")
    assert marks("orphan") == ["parent", "undo-parent"]  # the parent compensated too


def test_rate_limited_steps_wait_durably_for_their_permit(runner: Runner) -> None:
    first = wf.limited.start("p1", "shared-key")
    assert first.result(timeout=20) == 0.0
    second = wf.limited.start("p2", "shared-key")
    until_status(second, "suspended")  # about 3 s to wait: longer than the threshold
    permit = WorkflowStep.objects.get(execution_id=second.execution_id, kind="permit")
    delay = permit.result["delay"]
    assert 2.0 < delay <= 3.0
    assert second.result(timeout=20) == delay
    granted = Beat.objects.get(name="p1", instant="permitted").at
    assert Beat.objects.get(name="p2", instant="permitted").at - granted >= 2.0
