"""Calls through a real runner: persisted and volatile, sync and async, typed errors."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from django.db import transaction

from clusterkit import (
    CallInTransaction,
    InvalidPayload,
    MailboxFull,
    PayloadTooLarge,
    RemoteError,
    UnknownRpc,
    context,
)
from clusterkit.models import Message, Reply, ReplyStatus
from clusterkit.runner import Runner
from tests.testapp.entities import Batcher, Clock, Counter, Flaky, Recorder, Sleeper
from tests.testapp.models import HandlerRun

pytestmark = pytest.mark.django_db(transaction=True)


def test_persisted_call_sync(runner: Runner) -> None:
    c = Counter.client("sync-1")
    assert c.increment.call(by=2) == 2
    assert c.increment.call(by=3) == 5
    assert Reply.objects.count() == 2
    assert Message.objects.filter(processed=True).count() == 2


async def test_persisted_and_volatile_async(runner: Runner) -> None:
    c = Counter.client("async-1")
    assert await c.increment.acall(by=1) == 1
    assert await c.increment(by=4) == 5
    assert await c.get.acall() == 5


def test_volatile_sync_and_sync_handler(runner: Runner) -> None:
    c = Counter.client("vol-1")
    c.increment.call(by=7)
    assert c.get.call() == 7
    assert c.get_sync.call() == 7


def test_context_travels_with_the_message(runner: Runner) -> None:
    parent = "00-" + "c" * 32 + "-" + "d" * 16 + "-01"
    with context.use(context.RequestContext(request_id="req-9", tenant_id="acme",
                                            traceparent=parent)):
        seen = Counter.client("ctx-1").whoami.call()
    assert seen["request_id"] == "req-9"
    assert seen["tenant_id"] == "acme"
    assert str(seen["traceparent"]).split("-")[1] == "c" * 32
    assert seen["entity_id"] == "ctx-1"
    assert seen["runner_id"] == runner.runner_id


def test_primary_key_dedups(runner: Runner) -> None:
    r = Recorder.client("dedup")
    first = r.record.options(primary_key="k1").call(seq=1, key="k1")
    second = r.record.options(primary_key="k1").call(seq=2, key="k1")
    assert first == second == 1
    assert HandlerRun.objects.filter(key="k1").count() == 1
    assert Message.objects.filter(entity_id="dedup").count() == 1


def test_send_is_fire_and_forget_and_in_order(runner: Runner) -> None:
    r = Recorder.client("ordered")
    ids = [r.record.send(seq=i) for i in range(50)]
    assert all(isinstance(i, int) for i in ids)
    deadline = time.monotonic() + 20
    while Reply.objects.filter(request_id__in=ids).count() < 50:
        assert time.monotonic() < deadline, "sends were not all handled"
        time.sleep(0.05)
    seqs = list(HandlerRun.objects.filter(entity_id="ordered").order_by("id")
                .values_list("seq", flat=True))
    assert seqs == list(range(50))


def test_send_many_in_one_transaction(runner: Runner) -> None:
    ids = Counter.send_many([(f"bulk-{i % 10}", "increment", {"by": 1}) for i in range(200)])
    assert len(set(ids)) == 200
    deadline = time.monotonic() + 20
    while Reply.objects.filter(request_id__in=ids).count() < 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert Counter.client("bulk-3").get.call() == 20


def replies_of(ids: list[int], timeout: float = 20) -> list[Reply]:
    """The replies to ``ids``, in their order, once all are there."""
    deadline = time.monotonic() + timeout
    while Reply.objects.filter(request_id__in=ids).count() < len(ids):
        assert time.monotonic() < deadline, "replies missing"
        time.sleep(0.05)
    by_request = {r.request_id: r for r in Reply.objects.filter(request_id__in=ids)}
    return [by_request[i] for i in ids]


def test_batched_rpc_takes_waiting_calls_together_in_order(runner: Runner) -> None:
    ids = Batcher.send_many([("sum", "add", {"n": i}) for i in range(1, 101)])
    results = [json.loads(r.payload) for r in replies_of(ids)]
    assert results == [i * (i + 1) // 2 for i in range(1, 101)]  # running sums, in order
    sizes = Batcher.client("sum").sizes.call()
    assert sum(sizes) == 100 and max(sizes) > 1


def test_a_failing_batch_falls_back_to_one_call_at_a_time(runner: Runner) -> None:
    ids = Batcher.send_many([("mixed", "add", {"n": n}) for n in (1, 2, -1, 3)])
    replies = replies_of(ids)
    assert [r.status for r in replies] == [ReplyStatus.SUCCESS, ReplyStatus.SUCCESS,
                                           ReplyStatus.FAILURE, ReplyStatus.SUCCESS]
    assert [json.loads(r.payload) for r in replies if r.status == ReplyStatus.SUCCESS] == [
        1, 3, 6
    ]


def test_send_commits_and_rolls_back_with_the_caller(runner: Runner) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        Recorder.client("tx").record.send(seq=1, key="rolled-back")
        raise RuntimeError("abort")
    with transaction.atomic():
        Recorder.client("tx").record.send(seq=2, key="committed")
    deadline = time.monotonic() + 20
    while not HandlerRun.objects.filter(key="committed").exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert not HandlerRun.objects.filter(key="rolled-back").exists()
    assert not Message.objects.filter(payload__contains="rolled-back").exists()


def test_call_inside_atomic_is_refused() -> None:
    with transaction.atomic(), pytest.raises(CallInTransaction):
        Counter.client("x").increment.call(by=1)


def test_scheduled_delivery(runner: Runner) -> None:
    sent = time.time()
    late = Clock.client("c1").tick.options(deliver_at=dt.timedelta(seconds=1.5)).call(sent_at=sent)
    assert 1.4 <= late <= 4.0


def test_defect_retried_then_succeeds(runner: Runner) -> None:
    assert Flaky.client("f1").attempt.call(tag="twice", fail_times=2) == 2
    assert runner.stats.retried >= 2


def test_poison_message_fails_with_its_error_and_runner_keeps_going(runner: Runner) -> None:
    with pytest.raises(RemoteError) as info:
        Flaky.client("f2").attempt.call(tag="always", fail_times=100)
    assert info.value.type_name == "RuntimeError"
    assert "flaky failure 4" in info.value.message
    assert "Traceback" in info.value.traceback
    assert Counter.client("after-poison").increment.call() == 1


def test_volatile_handler_error_is_typed(runner: Runner) -> None:
    with pytest.raises(RemoteError) as info:
        Flaky.client("f3").boom.call()
    assert info.value.type_name == "ValueError"


def test_bad_payload_types_are_refused_before_sending() -> None:
    with pytest.raises(InvalidPayload):
        Counter.client("bad").increment.send(by="three")
    with pytest.raises(InvalidPayload):
        Counter.client("bad").increment.send(by=1, extra=2)
    with pytest.raises(UnknownRpc):
        Counter.client("bad").decrement  # noqa: B018
    with pytest.raises(InvalidPayload):
        Counter.client("")
    assert Message.objects.count() == 0


def test_oversized_payload_is_refused() -> None:
    with pytest.raises(PayloadTooLarge):
        Recorder.client("big").record.send(seq=1, key="x" * 2_000_000)


def test_mailbox_full(runner: Runner) -> None:
    import concurrent.futures

    client = Sleeper.client("s1")
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(client.nap.call, seconds=0.5) for _ in range(6)]
        outcomes = []
        for f in futures:
            try:
                outcomes.append(f.result())
            except MailboxFull:
                outcomes.append("full")
    assert outcomes.count("rested") >= 2
    assert "full" in outcomes
