"""kill -9 of a real runner mid-way through a backlog: nothing lost, nothing doubled."""

from __future__ import annotations

import collections
from collections.abc import Callable

import pytest

from clusterkit import RunnerUnavailable
from clusterkit.models import Message, Reply
from clusterkit.routing import router
from tests.testapp.entities import Counter, Recorder
from tests.testapp.models import HandlerRun

from .harness import RunnerProcess, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.subprocess]

ENTITIES = 200
CALLS = 2000


def test_kill_9_mid_backlog_then_restart(spawn: Callable[..., RunnerProcess]) -> None:
    first = spawn("first")

    # Primary-key duplicates, answered before the crash: each key runs once.
    for i in range(20):
        key = f"pk-{i % 10}"
        Recorder.client(f"dup-{i % 10}").record.options(primary_key=key).call(seq=0, key=key)

    per_entity = CALLS // ENTITIES
    batch = [
        (f"e-{entity}", "record", {"seq": seq})
        for seq in range(per_entity)
        for entity in range(ENTITIES)
    ]
    ids: list[int] = []
    for start in range(0, len(batch), 100):
        ids.extend(Recorder.send_many(batch[start : start + 100]))
    wait_until(lambda: Reply.objects.filter(request_id__in=ids).count() >= 200, 60, "progress")
    first.kill()
    done_before = Reply.objects.filter(request_id__in=ids).count()
    assert done_before < CALLS, "the runner finished before it was killed; nothing was tested"

    router.cache.clear()
    with pytest.raises(RunnerUnavailable):
        Counter.client("anyone").get.options(timeout=1.5).call()

    spawn("second")
    wait_until(
        lambda: Reply.objects.filter(request_id__in=ids).count() == CALLS, 90, "all replies"
    )

    # Exactly one reply per call, every message processed.
    assert Reply.objects.filter(request_id__in=ids).count() == CALLS
    assert not Message.objects.filter(id__in=ids, processed=False).exists()
    replies_per_request = collections.Counter(
        Reply.objects.filter(request_id__in=ids).values_list("request_id", flat=True)
    )
    assert set(replies_per_request.values()) == {1}

    # Each entity saw its calls in send order, in every process that hosted it.
    runs = HandlerRun.objects.filter(entity_id__startswith="e-").order_by("id")
    assert not runs.filter(out_of_order=True).exists()
    seen: dict[tuple[str, int], list[int]] = collections.defaultdict(list)
    covered: dict[str, set[int]] = collections.defaultdict(set)
    for entity_id, seq, pid in runs.values_list("entity_id", "seq", "pid"):
        seen[(entity_id, pid)].append(seq)
        covered[entity_id].add(seq)
    for seqs in seen.values():
        assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))
    assert all(covered[f"e-{e}"] == set(range(per_entity)) for e in range(ENTITIES))
    assert len({pid for _, pid in seen}) == 2, "both runners should have handled calls"

    # The primary-key calls ran once each.
    keyed = collections.Counter(HandlerRun.objects.exclude(key="").values_list("key", flat=True))
    assert keyed == {f"pk-{i}": 1 for i in range(10)}
