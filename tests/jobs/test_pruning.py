"""Finished jobs are pruned with their attempts; unfinished ones are kept."""

from __future__ import annotations

import datetime as dt
import io
import time
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.core.checks import run_checks
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from clusterkit.models import Message, Reply
from clusterkit.runner import Runner
from jobs import engine
from jobs.models import Job
from tests.testapp import tasks

from .test_service import until

pytestmark = pytest.mark.django_db(transaction=True)


def age(job_id: str, seconds: float) -> None:
    """Pretend the job was enqueued ``seconds`` ago."""
    Job.objects.filter(pk=job_id).update(enqueued_at=timezone.now() - dt.timedelta(seconds=seconds))


def test_prune_keeps_unfinished_and_recent_jobs(runner: Runner) -> None:
    done = tasks.add.enqueue(1, 2).id
    recent = tasks.add.enqueue(3, 4).id
    failed = tasks.always_fails.using().enqueue("old").id
    scheduled = tasks.record.using(run_after=timezone.now() + dt.timedelta(hours=1)).enqueue("s").id
    until(done, "SUCCESSFUL")
    until(recent, "SUCCESSFUL")
    until(failed, "FAILED", timeout=40)
    for job_id in (done, failed, scheduled):
        age(job_id, 3600)
    attempts = [m.id for m, _ in engine.state(failed).attempts]
    assert len(attempts) == 3

    out = io.StringIO()
    call_command("jobs", "prune", "--older-than", "60", stdout=out)
    assert "deleted 2 finished job(s)" in out.getvalue()
    assert set(Job.objects.values_list("pk", flat=True)) == {recent, scheduled}
    assert not Message.objects.filter(id__in=attempts).exists()
    assert not Reply.objects.filter(request_id__in=attempts).exists()
    assert engine.state(scheduled).status == "READY"
    assert engine.state(recent).return_value == 7


@pytest.fixture
def fast_pruning() -> Iterator[None]:
    """Prune every 0.2 s, keeping finished jobs for a minute (set before the runner starts)."""
    with override_settings(CLUSTERKIT={**settings.CLUSTERKIT, "PRUNE_INTERVAL": 0.2},
                           JOBS={**getattr(settings, "JOBS", {}), "RESULT_RETENTION": 60.0}):
        yield


def test_runner_prunes_finished_jobs_on_its_own(fast_pruning: None, runner: Runner) -> None:
    job_id = tasks.add.enqueue(5, 5).id
    other = tasks.add.enqueue(6, 6).id
    until(job_id, "SUCCESSFUL")
    until(other, "SUCCESSFUL")
    age(job_id, 120)
    deadline = time.monotonic() + 10
    while Job.objects.filter(pk=job_id).exists():
        assert time.monotonic() < deadline, "the runner did not prune the finished job"
        time.sleep(0.1)
    assert engine.state(other).return_value == 12  # younger than the retention


def test_clusterkit_prune_runs_the_jobs_pruner(runner: Runner) -> None:
    job_id = tasks.add.enqueue(1, 1).id
    until(job_id, "SUCCESSFUL")
    age(job_id, 30 * 24 * 3600)
    out = io.StringIO()
    call_command("clusterkit", "prune", stdout=out)
    assert "deleted 1 finished jobs past their retention" in out.getvalue()
    assert not Job.objects.filter(pk=job_id).exists()


def test_retention_checks() -> None:
    with override_settings(JOBS={"RESULT_RETENTION": 10 * 24 * 3600.0}):
        assert "jobs.W001" in {m.id for m in run_checks()}
    with override_settings(JOBS={"RESULT_RETENTION": "a week"}):
        assert "jobs.E004" in {m.id for m in run_checks()}
    with override_settings(CLUSTERKIT={"PRUNE_INTERVAL": 0}):
        assert "clusterkit.E006" in {m.id for m in run_checks()}
    assert not {"jobs.W001", "jobs.E004", "clusterkit.E006"} & {m.id for m in run_checks()}
