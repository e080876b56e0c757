"""JobService: named handlers, idempotency keys, cancellation, retry, concurrency keys."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import io
import itertools
import time

import pytest
from django.core.management import call_command
from django.utils import timezone

from clusterkit.runner import Runner
from jobs import engine
from jobs.models import Job
from jobs.service import service
from tests.testapp import tasks
from tests.testapp.models import HandlerRun

pytestmark = pytest.mark.django_db(transaction=True)


def until(job_id: str, *statuses: str, timeout: float = 20.0) -> engine.JobState:
    deadline = time.monotonic() + timeout
    while (current := engine.state(job_id)).status not in statuses:
        assert time.monotonic() < deadline, f"job is {current.status}"
        time.sleep(0.05)
    return current


def test_registered_handler_runs(runner: Runner) -> None:
    job_id = service.enqueue("welcome", {"user": "ada"})
    assert until(job_id, "SUCCESSFUL").return_value == "welcome ada"
    with pytest.raises(LookupError):
        service.enqueue("nobody-registered-this")


async def test_async_service(runner: Runner) -> None:
    job_id = await service.aenqueue("welcome", {"user": "bob"})
    deadline = time.monotonic() + 20
    while (await service.aget(job_id)).status != "SUCCESSFUL":
        assert time.monotonic() < deadline


def test_idempotency_keys_run_each_key_once(runner: Runner) -> None:
    ids = {service_enqueue_record(i) for i in range(1000)}
    assert len(ids) == 100
    for job_id in ids:
        until(job_id, "SUCCESSFUL")
    assert HandlerRun.objects.filter(entity_id="job").count() == 100
    assert Job.objects.count() == 100


def service_enqueue_record(i: int) -> str:
    new = engine.NewJob(name="tests.testapp.tasks.record", args=[f"key-{i % 100}"], kwargs={},
                        idempotency_key=f"key-{i % 100}")
    return engine.enqueue_many([new])[0].id


def test_cancel_scheduled_job(runner: Runner) -> None:
    result = tasks.record.using(run_after=timezone.now() + dt.timedelta(seconds=30)).enqueue("x")
    assert engine.cancel(result.id)
    assert engine.state(result.id).status == "CANCELLED"
    assert not engine.cancel(result.id)  # already final
    result.refresh()
    assert result.status == "FAILED"
    assert result.errors[0].exception_class_path == "jobs.engine.JobCancelled"


def test_cooperative_cancel_of_a_running_job(runner: Runner) -> None:
    result = tasks.wait_for_cancel.enqueue(20.0)
    until(result.id, "RUNNING")
    assert engine.cancel(result.id)
    assert until(result.id, "CANCELLED").errors[0].error_class == "jobs.engine.JobCancelled"


def test_retry_a_failed_job_from_the_command(runner: Runner) -> None:
    result = tasks.always_fails.using().enqueue("once")
    until(result.id, "FAILED", timeout=40)
    out = io.StringIO()
    call_command("jobs", "status", stdout=out)
    assert "default" in out.getvalue()
    call_command("jobs", "retry", result.id, stdout=out)
    assert "1 job(s) queued again" in out.getvalue()
    final = until(result.id, "FAILED", timeout=40)
    assert len(final.attempts) == 4 and len(final.errors) == 4


def test_concurrency_key_limits_parallel_runs(runner: Runner) -> None:
    ids = [
        engine.enqueue_many([engine.NewJob(
            name="tests.testapp.tasks.slow_record", args=[f"ck-{i}", 0.2], kwargs={},
            concurrency_key="tenant-1", concurrency_limit=1,
        )])[0].id
        for i in range(4)
    ]
    states = [until(i, "SUCCESSFUL") for i in ids]
    spans = sorted((s.outcomes[-1].started_at, s.outcomes[-1].finished_at) for s in states)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end - 0.005, "two jobs with the same key overlapped"


def test_poison_job_does_not_stop_others(runner: Runner) -> None:
    bad = tasks.always_fails.enqueue("poison")
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        good = list(pool.map(lambda i: tasks.add.enqueue(i, i).id, range(20)))
    for job_id in good:
        assert until(job_id, "SUCCESSFUL").return_value is not None
    assert until(bad.id, "FAILED", timeout=40).errors[-1].error_traceback


def test_enqueue_immediately_survives_a_rollback(runner: Runner, on_postgres: bool) -> None:
    from django.db import transaction
    from django.test import override_settings

    if not on_postgres:
        pytest.skip("SQLite has one writer: jobs always join the transaction there")
    with (
        override_settings(JOBS={"ENQUEUE_ON_COMMIT": False}),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        kept = tasks.record.enqueue("outside-the-transaction")
        raise RuntimeError("abort")
    assert until(kept.id, "SUCCESSFUL").return_value == "outside-the-transaction"


def test_retry_on_limits_which_errors_are_retried(runner: Runner) -> None:
    new = engine.NewJob(name="tests.testapp.tasks.always_fails", args=["typed"], kwargs={},
                        max_attempts=3, retry_on=["builtins.KeyError"])
    job_id = engine.enqueue_many([new])[0].id
    final = until(job_id, "FAILED")
    assert len(final.attempts) == 1, "a ValueError is not in retry_on: no second attempt"


def test_queue_maps_to_its_shard_group() -> None:
    from django.test import override_settings

    from clusterkit.models import Message

    with override_settings(
        CLUSTERKIT={"SHARD_GROUPS": ["default", "mail"]}, JOBS={"QUEUE_GROUPS": {"emails": "mail"}}
    ):
        result = tasks.async_echo.enqueue("routed")  # queue_name="emails"
        plain = tasks.add.enqueue(1, 1)
    assert Message.objects.get(entity_id=f"emails:{result.id}").shard_group == "mail"
    assert Message.objects.get(entity_id=f"default:{plain.id}").shard_group == "default"
