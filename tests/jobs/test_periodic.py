"""Periodic tasks from cron: each instant enqueues the task once."""

from __future__ import annotations

import time

import pytest

from clusterkit.runner import Runner
from jobs.models import Job
from jobs.periodic import periodic, periodic_jobs
from tests.testapp import tasks

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("clean_schedules"),
]


def test_periodic_task_is_enqueued_every_instant(runner: Runner) -> None:
    periodic("* * * * * */1", name="periodic:tick")(tasks.tick)
    assert periodic_jobs() == {"periodic:tick": "* * * * * */1"}
    deadline = time.monotonic() + 15
    while Job.objects.filter(name="tests.testapp.tasks.tick").count() < 3:
        assert time.monotonic() < deadline, "the periodic task was not enqueued"
        time.sleep(0.1)
