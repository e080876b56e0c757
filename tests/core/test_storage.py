"""Message storage: dedup, claiming under read leases, fenced commits and pruning."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from django.db.models import F
from django.db.models.functions import Now

from clusterkit import leases, snowflake
from clusterkit.models import Message, Reply, ReplyStatus, ShardLease
from clusterkit.storage import (
    ClaimedMessage,
    Completion,
    OutgoingMessage,
    Storage,
    message_key,
    notify_payloads,
)

pytestmark = pytest.mark.django_db

GROUP = "default"
LONG_LEASE_MS = 600_000


@pytest.fixture
def storage() -> Iterator[Storage]:
    yield Storage()


def outgoing(
    shard: int = 0,
    *,
    key: str | None = None,
    entity_id: str = "e1",
    rpc: str = "increment",
    deliver_at: int | None = None,
    priority: int = 0,
    group: str = GROUP,
) -> OutgoingMessage:
    return OutgoingMessage(
        id=snowflake.next_id(),
        message_key=key,
        shard_group=group,
        shard_id=shard,
        entity_type="Counter",
        entity_id=entity_id,
        rpc=rpc,
        payload='{"by": 1}',
        headers="{}",
        priority=priority,
        deliver_at=deliver_at,
    )


def now_ms() -> int:
    return int(time.time() * 1000)


def ids_of(claimed: list[ClaimedMessage]) -> list[int]:
    return [m.id for m in claimed]


def completion(
    message: OutgoingMessage | ClaimedMessage, epoch: int, payload: str = "1"
) -> Completion:
    return Completion(
        request_id=message.id,
        reply_id=snowflake.next_id(),
        shard_group=message.shard_group,
        shard_id=message.shard_id,
        epoch=epoch,
        status=int(ReplyStatus.SUCCESS),
        payload=payload,
        notify=False,
    )


# -- saving ------------------------------------------------------------------------------


def test_save_returns_the_ids_and_stores_the_rows(storage: Storage) -> None:
    messages = [outgoing(shard=i % 3) for i in range(5)]
    assert storage.save(messages) == [m.id for m in messages]
    stored = {m.id: m for m in Message.objects.all()}
    assert set(stored) == {m.id for m in messages}
    row = stored[messages[0].id]
    assert (row.shard_group, row.shard_id, row.entity_type, row.entity_id, row.rpc) == (
        GROUP, 0, "Counter", "e1", "increment",
    )  # fmt: skip
    assert (row.payload, row.headers, row.processed, row.attempts, row.last_read) == (
        '{"by": 1}', "{}", False, 0, None,
    )  # fmt: skip


def test_save_nothing(storage: Storage) -> None:
    assert storage.save([]) == []


def test_dedup_by_message_key_returns_the_original_id(storage: Storage) -> None:
    first = outgoing(key="k-1")
    assert storage.save([first]) == [first.id]
    again = outgoing(key="k-1")
    other = outgoing(key="k-2")
    assert storage.save([again, other]) == [first.id, other.id]
    assert Message.objects.filter(message_key="k-1").count() == 1
    assert Message.objects.get(message_key="k-1").id == first.id
    assert not Message.objects.filter(pk=again.id).exists()


def test_dedup_within_one_batch(storage: Storage) -> None:
    a, b = outgoing(key="same"), outgoing(key="same")
    ids = storage.save([a, b])
    assert ids[0] == ids[1]
    assert Message.objects.filter(message_key="same").count() == 1
    assert ids[0] == Message.objects.get(message_key="same").id


def test_dedup_still_answers_after_processing(storage: Storage) -> None:
    first = outgoing(key="done-key")
    storage.save([first])
    Message.objects.filter(pk=first.id).update(processed=True)
    assert storage.save([outgoing(key="done-key")]) == [first.id]


def test_messages_without_a_key_are_never_deduped(storage: Storage) -> None:
    messages = [outgoing() for _ in range(3)]
    assert storage.save(messages) == [m.id for m in messages]
    assert Message.objects.count() == 3


def test_message_key_hashes_long_keys() -> None:
    assert message_key("Counter", "1", "increment", "pk") == "Counter/1/increment/pk"
    long_key = message_key("Counter", "1", "increment", "x" * 300)
    assert len(long_key) == 64
    assert long_key == message_key("Counter", "1", "increment", "x" * 300)
    assert long_key != message_key("Counter", "1", "increment", "y" * 300)


def test_notify_payloads_fit_the_limit() -> None:
    ids = list(range(10**15, 10**15 + 3000))
    parts = list(notify_payloads(ids))
    assert len(parts) > 1
    assert all(len(p) <= 7000 for p in parts)
    assert [int(x) for p in parts for x in p.split(",")] == ids
    assert list(notify_payloads([])) == []


# -- claiming ------------------------------------------------------------------------------


def test_claim_returns_due_messages_in_id_order(storage: Storage) -> None:
    messages = [outgoing(shard=i % 4) for i in range(12)]
    storage.save(list(reversed(messages)))  # insertion order does not matter
    claimed = storage.claim(GROUP, [0, 1, 2, 3], 100, LONG_LEASE_MS)
    assert ids_of(claimed) == sorted(m.id for m in messages)
    assert all(m.attempts == 1 for m in claimed)
    assert all(m.entity_type == "Counter" and m.payload == '{"by": 1}' for m in claimed)


def test_claim_only_takes_the_asked_shards_and_group(storage: Storage) -> None:
    wanted = [outgoing(shard=1), outgoing(shard=3)]
    storage.save([*wanted, outgoing(shard=2), outgoing(shard=1, group="other")])
    assert ids_of(storage.claim(GROUP, [1, 3], 100, LONG_LEASE_MS)) == [m.id for m in wanted]
    assert storage.claim(GROUP, [], 100, LONG_LEASE_MS) == []
    assert storage.claim(GROUP, [2], 0, LONG_LEASE_MS) == []


def test_claim_respects_the_limit_in_order(storage: Storage) -> None:
    messages = [outgoing() for _ in range(10)]
    storage.save(messages)
    first = storage.claim(GROUP, [0], 4, LONG_LEASE_MS)
    second = storage.claim(GROUP, [0], 4, LONG_LEASE_MS)
    third = storage.claim(GROUP, [0], 4, LONG_LEASE_MS)
    assert ids_of(first) + ids_of(second) + ids_of(third) == [m.id for m in messages]
    assert len(third) == 2


def test_claim_puts_higher_priority_first(storage: Storage) -> None:
    low, high, normal = outgoing(priority=-1), outgoing(priority=5), outgoing()
    storage.save([low, high, normal])
    assert ids_of(storage.claim(GROUP, [0], 10, LONG_LEASE_MS)) == [high.id, normal.id, low.id]


def test_claim_respects_deliver_at(storage: Storage) -> None:
    later = outgoing(deliver_at=now_ms() + 60_000)
    past = outgoing(deliver_at=now_ms() - 1000)
    now = outgoing()
    storage.save([later, past, now])
    assert ids_of(storage.claim(GROUP, [0], 10, LONG_LEASE_MS)) == [past.id, now.id]
    due_in = storage.next_delivery(GROUP, [0])
    assert due_in is not None
    assert 50_000 < due_in <= 60_100  # the database clock may differ by a few ms
    assert storage.claim(GROUP, [0], 10, LONG_LEASE_MS) == []


def test_scheduled_message_becomes_claimable_when_due(storage: Storage) -> None:
    soon = outgoing(deliver_at=now_ms() + 300)
    storage.save([soon])
    assert storage.claim(GROUP, [0], 10, LONG_LEASE_MS) == []
    time.sleep(0.5)
    assert ids_of(storage.claim(GROUP, [0], 10, LONG_LEASE_MS)) == [soon.id]
    assert storage.next_delivery(GROUP, [0]) is None


def test_claimed_message_is_not_claimed_again_until_the_read_lease_expires(
    storage: Storage,
) -> None:
    message = outgoing()
    storage.save([message])
    lease_ms = 400
    assert ids_of(storage.claim(GROUP, [0], 10, lease_ms)) == [message.id]
    assert storage.claim(GROUP, [0], 10, lease_ms) == []
    time.sleep(0.6)
    again = storage.claim(GROUP, [0], 10, lease_ms)
    assert ids_of(again) == [message.id]
    assert again[0].attempts == 2
    assert storage.claim(GROUP, [0], 10, lease_ms) == []


def test_reset_read_leases_makes_messages_claimable(storage: Storage) -> None:
    on_0, on_1 = outgoing(shard=0), outgoing(shard=1)
    storage.save([on_0, on_1])
    assert len(storage.claim(GROUP, [0, 1], 10, LONG_LEASE_MS)) == 2
    assert storage.claim(GROUP, [0, 1], 10, LONG_LEASE_MS) == []
    assert storage.reset_read_leases(GROUP, [0]) == 1
    assert storage.reset_read_leases(GROUP, []) == 0
    again = storage.claim(GROUP, [0, 1], 10, LONG_LEASE_MS)
    assert ids_of(again) == [on_0.id]
    assert again[0].attempts == 2


def test_processed_messages_are_not_claimed_or_reset(storage: Storage) -> None:
    done = outgoing()
    storage.save([done])
    Message.objects.filter(pk=done.id).update(processed=True, last_read=now_ms())
    assert storage.claim(GROUP, [0], 10, LONG_LEASE_MS) == []
    assert storage.reset_read_leases(GROUP, [0]) == 0


# -- committing under the lease epoch --------------------------------------------------------


@pytest.fixture
def held(storage: Storage) -> tuple[int, dict[tuple[str, int], int]]:
    """A registered runner holding all 4 shards of the default group."""
    runner = leases.register("127.0.0.1:1", [GROUP], 1.0, "test")
    leases.ensure_shards([GROUP], 4)
    state = leases.tick(runner.machine_id, [GROUP], 4, 30.0, set(), False)
    assert state.alive
    assert set(state.held) == {(GROUP, s) for s in range(4)}
    assert sorted(state.acquired) == [(GROUP, s) for s in range(4)]
    return runner.machine_id, state.held


def test_commit_writes_replies_and_marks_processed(
    storage: Storage, held: tuple[int, dict[tuple[str, int], int]]
) -> None:
    runner_id, epochs = held
    messages = [outgoing(shard=s) for s in range(4)]
    storage.save(messages)
    claimed = storage.claim(GROUP, [0, 1, 2, 3], 10, LONG_LEASE_MS)
    done = [
        completion(m, epochs[(m.shard_group, m.shard_id)], str(i)) for i, m in enumerate(claimed)
    ]
    ok, fenced = storage.commit(runner_id, done)
    assert (ok, fenced) == (done, [])
    assert Message.objects.filter(processed=True).count() == 4
    replies = storage.replies([m.id for m in messages])
    assert replies == {c.request_id: (int(ReplyStatus.SUCCESS), c.payload) for c in done}
    assert storage.claim(GROUP, [0, 1, 2, 3], 10, 0) == []
    # committing the same completions again writes nothing twice
    storage.commit(runner_id, done)
    assert Reply.objects.count() == 4


def test_commit_fences_a_stale_epoch(
    storage: Storage, held: tuple[int, dict[tuple[str, int], int]]
) -> None:
    runner_id, epochs = held
    keep, lose = outgoing(shard=0), outgoing(shard=1)
    storage.save([keep, lose])
    storage.claim(GROUP, [0, 1], 10, LONG_LEASE_MS)
    # shard 1 changed hands (and maybe back) since it was claimed: its epoch moved on
    ShardLease.objects.filter(shard_group=GROUP, shard_id=1).update(epoch=F("epoch") + 1)
    good = completion(keep, epochs[(GROUP, 0)])
    stale = completion(lose, epochs[(GROUP, 1)])
    ok, fenced = storage.commit(runner_id, [good, stale])
    assert ok == [good]
    assert fenced == [stale]
    assert Reply.objects.filter(request_id=lose.id).count() == 0
    assert Reply.objects.filter(request_id=keep.id).count() == 1
    assert Message.objects.get(pk=lose.id).processed is False
    assert Message.objects.get(pk=keep.id).processed is True


def test_commit_fences_a_lease_held_by_another_runner(
    storage: Storage, held: tuple[int, dict[tuple[str, int], int]]
) -> None:
    runner_id, epochs = held
    other = leases.register("127.0.0.1:2", [GROUP], 1.0, "test")
    message = outgoing(shard=2)
    storage.save([message])
    ShardLease.objects.filter(shard_group=GROUP, shard_id=2).update(runner=other)
    ok, fenced = storage.commit(runner_id, [completion(message, epochs[(GROUP, 2)])])
    assert (len(ok), len(fenced)) == (0, 1)
    assert not Reply.objects.exists()


def test_commit_fences_an_expired_lease(
    storage: Storage, held: tuple[int, dict[tuple[str, int], int]]
) -> None:
    runner_id, epochs = held
    message = outgoing(shard=3)
    storage.save([message])
    ShardLease.objects.filter(shard_group=GROUP, shard_id=3).update(expires_at=Now())
    ok, fenced = storage.commit(runner_id, [completion(message, epochs[(GROUP, 3)])])
    assert (len(ok), len(fenced)) == (0, 1)
    assert not Reply.objects.exists()


def test_commit_fences_a_wrong_runner_id(
    storage: Storage, held: tuple[int, dict[tuple[str, int], int]]
) -> None:
    runner_id, epochs = held
    message = outgoing(shard=0)
    storage.save([message])
    ok, fenced = storage.commit(runner_id + 1000, [completion(message, epochs[(GROUP, 0)])])
    assert (len(ok), len(fenced)) == (0, 1)
    assert not Reply.objects.exists()


def test_lease_tick_bumps_the_epoch_on_takeover(
    storage: Storage, held: tuple[int, dict[tuple[str, int], int]]
) -> None:
    runner_id, epochs = held
    leases.release_all(runner_id)
    state = leases.tick(runner_id, [GROUP], 4, 30.0, set(), False)
    assert {k: e - 1 for k, e in state.held.items()} == epochs
    message = outgoing(shard=0)
    storage.save([message])
    ok, fenced = storage.commit(runner_id, [completion(message, epochs[(GROUP, 0)])])
    assert (len(ok), len(fenced)) == (0, 1)
    ok, fenced = storage.commit(runner_id, [completion(message, state.held[(GROUP, 0)])])
    assert (len(ok), len(fenced)) == (1, 0)


# -- pruning -------------------------------------------------------------------------------


def test_prune_deletes_processed_messages_and_replies_below_an_id(
    storage: Storage, held: tuple[int, dict[tuple[str, int], int]]
) -> None:
    runner_id, epochs = held
    old = [outgoing() for _ in range(7)]
    old_pending = outgoing()
    cut = snowflake.next_id()
    new = [outgoing() for _ in range(2)]
    storage.save([*old, old_pending, *new])
    ok, _ = storage.commit(runner_id, [completion(m, epochs[(GROUP, 0)]) for m in [*old, *new]])
    assert len(ok) == 9
    assert storage.prune(cut, batch=3) == 7
    remaining = set(Message.objects.values_list("id", flat=True))
    assert remaining == {old_pending.id, *(m.id for m in new)}
    assert set(Reply.objects.values_list("request_id", flat=True)) == {m.id for m in new}
    assert storage.prune(cut) == 0
    assert storage.prune(snowflake.next_id()) == 2
    assert set(Message.objects.values_list("id", flat=True)) == {old_pending.id}
    assert not Reply.objects.exists()
