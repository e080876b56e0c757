"""The Django Tasks API on ClusterTaskBackend, against a real runner."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from clusterkit.runner import Runner
from jobs.compat import (
    InvalidTaskError,
    TaskResult,
    TaskResultDoesNotExist,
    TaskResultStatus,
    task,
    task_enqueued,
    task_finished,
    task_started,
)
from jobs.models import Job
from tests.testapp import tasks
from tests.testapp.models import HandlerRun

pytestmark = pytest.mark.django_db(transaction=True)


def finished(result: TaskResult, timeout: float = 20.0) -> TaskResult:
    deadline = time.monotonic() + timeout
    while True:
        result.refresh()
        if result.is_finished:
            return result
        assert time.monotonic() < deadline, f"task still {result.status}"
        time.sleep(0.05)


def test_capabilities() -> None:
    backend = tasks.add.get_backend()
    assert backend.supports_defer and backend.supports_async_task
    assert backend.supports_get_result and backend.supports_priority


def test_enqueue_run_and_result(runner: Runner) -> None:
    result = tasks.add.enqueue(2, 3)
    assert result.status == TaskResultStatus.READY
    assert result.args == [2, 3] and result.enqueued_at is not None
    done = finished(result)
    assert done.status == TaskResultStatus.SUCCESSFUL
    assert done.return_value == 5
    assert done.attempts == 1 and len(done.worker_ids) == 1
    assert done.started_at and done.finished_at and done.started_at <= done.finished_at
    assert done.last_attempted_at == done.started_at
    again = tasks.add.get_result(result.id)
    assert again.return_value == 5 and again.status == TaskResultStatus.SUCCESSFUL


async def test_async_task_and_aenqueue(runner: Runner) -> None:
    result = await tasks.async_echo.aenqueue("hello")
    deadline = time.monotonic() + 20
    while not result.is_finished:
        assert time.monotonic() < deadline
        await result.arefresh()
    assert result.return_value == "hello"
    assert result.task.queue_name == "emails" and result.task.priority == 10


def test_failure_records_errors_and_attempts(runner: Runner) -> None:
    done = finished(tasks.always_fails.enqueue("x"))
    assert done.status == TaskResultStatus.FAILED
    assert done.attempts == 3  # OPTIONS max_attempts
    assert len(done.errors) == 3
    assert done.errors[0].exception_class is ValueError
    assert "poison x" in done.errors[-1].traceback
    with pytest.raises(ValueError):
        done.return_value  # noqa: B018


def test_retry_until_success(runner: Runner) -> None:
    done = finished(tasks.fails_then_works.enqueue("retry-me", 2), timeout=40)
    assert done.status == TaskResultStatus.SUCCESSFUL
    assert done.return_value == "ok after 3"
    assert done.attempts == 3 and len(done.errors) == 2


def test_takes_context(runner: Runner) -> None:
    assert finished(tasks.with_context.enqueue("c")).return_value == 1


def test_defer_runs_after(runner: Runner) -> None:
    when = timezone.now() + dt.timedelta(seconds=1.5)
    result = tasks.add.using(run_after=when).enqueue(1, 1)
    time.sleep(0.8)
    result.refresh()
    assert result.status == TaskResultStatus.READY
    done = finished(result)
    assert done.started_at is not None and done.started_at >= when - dt.timedelta(seconds=0.1)


def test_priority_orders_the_backlog() -> None:
    # Build a backlog with no runner, then start one: it claims by priority.
    low = [tasks.record.using(priority=-5).enqueue(f"low-{i}") for i in range(5)]
    high = [tasks.record.using(priority=50).enqueue(f"high-{i}") for i in range(5)]
    import asyncio
    import threading

    fresh = Runner()
    thread = threading.Thread(target=lambda: asyncio.run(fresh.run()), daemon=True)
    thread.start()
    try:
        done = [finished(r) for r in low + high]
        starts = [r.started_at for r in done]
        assert all(s is not None for s in starts)
        assert max(starts[5:]) <= min(starts[:5]), "high priority jobs started first"  # type: ignore[type-var]
    finally:
        fresh.stop()
        thread.join(30)


def test_validation() -> None:
    with pytest.raises(InvalidTaskError):
        tasks.add.using(queue_name="nope").enqueue(1, 2)
    with pytest.raises(InvalidTaskError):
        tasks.add.using(run_after=dt.datetime(2030, 1, 1)).enqueue(1, 2)  # naive
    with pytest.raises(InvalidTaskError):
        tasks.add.using(priority=1000)
    with pytest.raises(TaskResultDoesNotExist):
        tasks.add.get_result("no-such-job")


def test_enqueue_commits_and_rolls_back_with_the_transaction(runner: Runner) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        tasks.record.enqueue("rolled-back")
        raise RuntimeError("abort")
    with transaction.atomic():
        kept = tasks.record.enqueue("committed")
    finished(kept)
    assert HandlerRun.objects.filter(key="committed").count() == 1
    assert not HandlerRun.objects.filter(key="rolled-back").exists()
    assert Job.objects.count() == 1


def test_signals_fire(runner: Runner) -> None:
    seen: list[tuple[str, Any]] = []

    def on(name: str) -> Callable[..., None]:
        def receiver(sender: Any, task_result: TaskResult, **kw: Any) -> None:
            seen.append((name, task_result.status))

        return receiver

    pairs = [(task_enqueued, "enqueued"), (task_started, "started"), (task_finished, "finished")]
    receivers = {s: on(n) for s, n in pairs}
    for signal, receiver in receivers.items():
        signal.connect(receiver, weak=False)
    try:
        finished(tasks.add.enqueue(1, 2))
        deadline = time.monotonic() + 5
        while len(seen) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        for signal, receiver in receivers.items():
            signal.disconnect(receiver)
    assert ("enqueued", TaskResultStatus.READY) in seen
    assert ("started", TaskResultStatus.RUNNING) in seen
    assert ("finished", TaskResultStatus.SUCCESSFUL) in seen


def test_task_must_be_module_level() -> None:
    def local() -> None: ...

    with pytest.raises(InvalidTaskError):
        task()(local).enqueue()
