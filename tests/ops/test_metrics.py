"""``/metrics`` of a web process and of a runner: the values move when work runs."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable

import pytest
from django.test import Client

from clusterkit.errors import MailboxFull
from clusterkit.runner import Runner
from tests.cluster.harness import RunnerProcess, wait_until
from tests.testapp.entities import Counter, Flaky, Sleeper

from .support import Samples, fetch, labels_of, metrics_url, parse, total, value

pytestmark = pytest.mark.django_db(transaction=True)


def scrape(client: Client) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    return parse(response.content.decode())


def test_web_process_metrics_move_with_the_work(runner: Runner, client: Client) -> None:
    before = scrape(client)
    for i in range(20):
        assert Counter.client(f"m{i}").increment.call(by=2) == 2
    with pytest.raises(Exception, match="boom"):
        Flaky.client("poison").boom.options(timeout=20).call()
    with concurrent.futures.ThreadPoolExecutor(6) as pool:  # a mailbox of 2 for 6 callers
        outcomes = [f.exception() for f in [
            pool.submit(Sleeper.client("full").nap.call, seconds=0.3) for _ in range(6)
        ]]  # fmt: skip
    full = sum(isinstance(e, MailboxFull) for e in outcomes)
    assert full >= 1
    after = scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    counter = {"entity_type": Counter.entity_type}
    assert moved("clusterkit_messages_sent_total", kind="persisted", **counter) == 20
    assert moved("clusterkit_messages_processed_total", **counter) == 20
    assert moved("clusterkit_handler_duration_seconds_count", **counter) == 20
    assert moved("clusterkit_message_delivery_latency_seconds_count", **counter) == 20
    assert moved("clusterkit_message_delivery_latency_seconds_sum", **counter) > 0
    flaky = {"entity_type": Flaky.entity_type}
    assert moved("clusterkit_messages_failed_total", **flaky) == 1
    assert moved("clusterkit_messages_retried_total", **flaky) >= 1
    sleeper = {"entity_type": Sleeper.entity_type}
    assert moved("clusterkit_mailbox_full_rejections_total", **sleeper) == full
    assert moved("clusterkit_messages_sent_total", kind="volatile", **sleeper) == 6
    # this process's runner, and the cluster as the database sees it
    rid = str(runner.runner_id)
    assert value(after, "clusterkit_runner_shards_held", runner=rid, shard_group="default") == 300
    assert value(after, "clusterkit_runner_entities_active", runner=rid, **counter) >= 20
    assert value(after, "clusterkit_lease_acquisitions_total", shard_group="default") >= 300
    assert value(after, "clusterkit_cluster_up") == 1
    assert value(after, "clusterkit_cluster_runners", state="healthy") == 1
    assert value(after, "clusterkit_cluster_runner_healthy", runner=rid) == 1
    assert value(after, "clusterkit_cluster_shards_held", shard_group="default", runner=rid) == 300
    assert value(after, "clusterkit_cluster_shards_held", shard_group="default", runner="") == 0
    # django-prometheus's own request metrics are there too
    assert total(after, "django_http_requests_total_by_method_total", method="GET") > total(
        before, "django_http_requests_total_by_method_total", method="GET"
    )


def test_backlog_and_jobs_come_from_the_database(client: Client) -> None:
    """No runner: what is sent stays in the backlog, and the collector counts it."""
    from tests.testapp.tasks import add

    Counter.send_many([(f"b{i}", "increment", {"by": 1}) for i in range(7)])
    for i in range(3):
        add.enqueue(i, i)
    add.using(run_after=_in(3600)).enqueue(1, 1)
    from .probes import probe_flow

    probe_flow.with_key("metrics-1").start("metrics-1")
    probe_flow.with_key("metrics-2").start("metrics-2")
    time.sleep(1.1)  # the collector keeps a scrape for a second
    samples = scrape(client)
    assert value(samples, "clusterkit_cluster_workflow_executions", status="running") == 2
    assert value(samples, "clusterkit_cluster_backlog_messages", shard_group="default",
                 state="due") == 12  # fmt: skip
    assert value(samples, "clusterkit_cluster_backlog_messages", shard_group="default",
                 state="scheduled") == 1  # fmt: skip
    assert value(samples, "clusterkit_cluster_jobs", queue="default", status="READY") == 3
    assert value(samples, "clusterkit_cluster_jobs", queue="default", status="SCHEDULED") == 1
    assert value(samples, "clusterkit_cluster_runners", state="healthy") == 0


def _in(seconds: float) -> object:
    import datetime as dt

    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)


@pytest.mark.subprocess
def test_runner_serves_metrics_on_its_port(spawn: Callable[..., RunnerProcess]) -> None:
    proc = spawn("metrics", "--metrics-port", "0")
    url = metrics_url(proc.log())
    before = fetch(url)
    (held,) = labels_of(before, "clusterkit_runner_shards_held")
    rid = held["runner"]
    assert value(before, "clusterkit_runner_shards_held", runner=rid, shard_group="default") == 300
    for i in range(30):
        Counter.client(f"r{i}").increment.call(by=1)
    counter = {"entity_type": Counter.entity_type}

    def processed() -> float:
        return value(fetch(url), "clusterkit_messages_processed_total", **counter)

    wait_until(lambda: processed() >= 30, 10, "the runner's counter to move", step=0.2)
    after = fetch(url)
    assert value(after, "clusterkit_handler_duration_seconds_count", **counter) >= 30
    assert value(after, "clusterkit_runner_entities_active", runner=rid, **counter) >= 30
    assert value(after, "clusterkit_lease_acquisitions_total", shard_group="default") == 300
    assert value(after, "clusterkit_cluster_runners", state="healthy") == 1

    # a second runner joins: the first hands over part of its shards, and says so
    spawn("second")
    wait_until(lambda: value(fetch(url), "clusterkit_cluster_runners", state="healthy") == 2,
               10, "the second runner to show", step=0.2)  # fmt: skip

    def handed_over() -> float:
        return value(fetch(url), "clusterkit_lease_releases_total", shard_group="default")

    wait_until(lambda: handed_over() > 0, 10, "the first runner to hand shards over", step=0.2)
    final = fetch(url)
    held = value(final, "clusterkit_runner_shards_held", runner=rid, shard_group="default")
    assert held == 300 - value(final, "clusterkit_lease_releases_total", shard_group="default")
    assert value(final, "clusterkit_lease_losses_total", shard_group="default") == 0


def test_redelivered_and_fenced_results_are_counted(
    client: Client, request: pytest.FixtureRequest
) -> None:
    from clusterkit.conf import cluster_settings
    from clusterkit.models import Message
    from clusterkit.storage import Completion

    counter = {"entity_type": Counter.entity_type}
    before = scrape(client)
    # as if a runner that died had claimed them: one attempt made, the read lease run out
    Counter.send_many([(f"re{i}", "increment", {"by": 1}) for i in range(5)])
    stale = int((time.time() - float(cluster_settings.READ_LEASE) - 5) * 1000)
    Message.objects.filter(entity_id__startswith="re").update(attempts=1, last_read=stale)
    runner: Runner = request.getfixturevalue("runner")
    wait_until(lambda: not Message.objects.filter(entity_id__startswith="re",
                                                  processed=False).exists(),
               10, "the redelivered messages to be handled")  # fmt: skip
    # a result under an epoch the runner no longer holds is fenced, not committed
    group, shard = next(iter(runner.held))
    stale_result = Completion(1, 2, group, shard, -7, 0, "1", False, Counter.entity_type)
    assert runner.loop is not None

    def fence() -> None:
        runner.completions.append(stale_result)
        runner.commit_wake.set()

    runner.loop.call_soon_threadsafe(fence)
    wait_until(lambda: runner.stats.fenced >= 1, 10, "the stale result to be fenced")
    after = scrape(client)
    assert value(after, "clusterkit_messages_redelivered_total", **counter) - value(
        before, "clusterkit_messages_redelivered_total", **counter
    ) == 5
    assert value(after, "clusterkit_messages_fenced_total", **counter) - value(
        before, "clusterkit_messages_fenced_total", **counter
    ) == 1
