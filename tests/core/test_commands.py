"""The ``clusterkit`` management command: status, drain and prune."""

from __future__ import annotations

import io
import time

import pytest
from django.core.management import CommandError, call_command

from clusterkit.models import Message, Reply, ShardLease
from clusterkit.runner import Runner
from tests.testapp.entities import Counter

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("clusterkit", *args, stdout=out)
    return out.getvalue()


def test_status_shows_runner_and_backlog(runner: Runner) -> None:
    Counter.client("s").increment.call()
    out = run("status")
    assert "1 runners" in out
    assert f"#{runner.runner_id}" in out and "shards=300" in out
    assert "group default: 300 shards, 0 unowned, backlog 0" in out
    assert "singleton cron:" not in out or f"runner #{runner.runner_id}" in out


def test_drain_hands_over_every_shard(runner: Runner) -> None:
    run("drain", str(runner.runner_id))
    deadline = time.monotonic() + 10
    while ShardLease.objects.filter(runner_id=runner.runner_id).exists():
        assert time.monotonic() < deadline, "the drained runner kept its shards"
        time.sleep(0.1)
    assert "300 unowned" in run("status")
    with pytest.raises(CommandError):
        run("drain", "999999")


def test_prune_deletes_processed_messages_and_replies(runner: Runner) -> None:
    Counter.client("p").increment.call()
    assert "deleted 0" in run("prune")  # younger than the retention
    assert "deleted 1" in run("prune", "--older-than", "0")
    assert not Message.objects.exists() and not Reply.objects.exists()


def test_prune_forgets_runners_long_silent(runner: Runner) -> None:
    import datetime as dt

    from django.utils import timezone

    from clusterkit import leases, pruning
    from clusterkit.models import Runner as RunnerRow

    dead = leases.register("127.0.0.1:1", ["default"], 1.0, "old")
    silent = leases.register("127.0.0.1:2", ["default"], 1.0, "old")
    RunnerRow.objects.filter(pk=dead.pk).update(
        last_heartbeat=timezone.now() - dt.timedelta(hours=1)
    )
    RunnerRow.objects.filter(pk=silent.pk).update(  # within ten lease lifetimes (TTL 3 s)
        last_heartbeat=timezone.now() - dt.timedelta(seconds=20)
    )
    assert "forgot 1 runners" in run("prune")
    assert set(RunnerRow.objects.values_list("pk", flat=True)) == {runner.runner_id, silent.pk}
    RunnerRow.objects.filter(pk=silent.pk).update(
        last_heartbeat=timezone.now() - dt.timedelta(hours=1)
    )
    assert pruning.prune_all()["dead runners"] == 1
    assert list(RunnerRow.objects.values_list("pk", flat=True)) == [runner.runner_id]


def test_status_names_where_singletons_run(runner: Runner) -> None:
    from clusterkit.singleton import singleton, singletons

    @singleton("status-probe")
    async def probe() -> None:
        import asyncio

        await asyncio.Event().wait()

    try:
        assert f"singleton status-probe: runner #{runner.runner_id}" in run("status")
    finally:
        singletons.pop("status-probe", None)
