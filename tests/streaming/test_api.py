"""publish/apublish, the log, retention, names and checks."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.checks import run_checks
from django.db import transaction
from django.utils import timezone

import streaming
from clusterkit import context
from clusterkit.errors import InvalidPayload
from streaming import log
from streaming.models import StreamEvent
from streaming.names import group_name

pytestmark = pytest.mark.django_db(transaction=True)


def seqs(tenant: str, channel: str) -> list[int]:
    return list(
        StreamEvent.objects.filter(tenant=tenant, channel=channel)
        .order_by("seq").values_list("seq", flat=True)
    )


def test_publish_numbers_events_consecutively(streams, chan):
    got = [streaming.publish(chan, "tick", {"n": i}, tenant="t1", wait=True) for i in range(5)]
    assert got == [1, 2, 3, 4, 5]
    rows = StreamEvent.objects.filter(tenant="t1", channel=chan).order_by("seq")
    assert [r.data for r in rows] == [{"n": i} for i in range(5)]
    assert {r.event for r in rows} == {"tick"}


async def test_apublish_send_keeps_order(streams, chan):
    for i in range(30):
        await streaming.apublish(chan, "tick", i, tenant="t1")
    last = await streaming.apublish(chan, "tick", 30, tenant="t1", wait=True)
    assert last == 31
    rows = [r async for r in StreamEvent.objects.filter(tenant="t1", channel=chan).order_by("seq")]
    assert [r.data for r in rows] == list(range(31))


def test_tenant_comes_from_the_context_else_default(streams, chan):
    with context.use(context.RequestContext(tenant_id="acme")):
        streaming.publish(chan, "a", 1, wait=True)
    streaming.publish(chan, "b", 2, wait=True)
    assert seqs("acme", chan) == [1]
    assert seqs("public", chan) == [1]  # separate streams, separate numbering


def test_publish_in_a_rolled_back_transaction_publishes_nothing(streams, chan):
    with pytest.raises(RuntimeError), transaction.atomic():
        streaming.publish(chan, "x", 1, tenant="t1")
        raise RuntimeError
    assert streaming.publish(chan, "y", 2, tenant="t1", wait=True) == 1


@pytest.mark.parametrize(
    ("channel", "event", "tenant"),
    [
        ("", "e", "t"), ("a b", "e", "t"), ("x" * 101, "e", "t"), ("-x", "e", "t"),
        ("ok", "bad\nevent", "t"), ("ok", "reset", "t"), ("ok", "", "t"),
        ("ok", "e", "a/b"), ("ok", "e", ""), ("ok", "e", "x" * 200),
    ],
)
def test_invalid_names_are_refused(channel, event, tenant):
    with pytest.raises(InvalidPayload):
        streaming.publish(channel, event, None, tenant=tenant)


def test_group_names_are_safe_and_distinct():
    names = {
        group_name("a", "b.c"), group_name("a.b", "c"), group_name("t", "x/y"),
        group_name("t", "x:y"), group_name("t" * 100, "c" * 100), group_name("t", "ok"),
    }
    assert len(names) == 6
    for name in names:
        assert len(name) < 100
        assert all(ch.isalnum() or ch in "-_." for ch in name)


def test_retention_by_count(streams, chan, configure):
    configure(RETENTION_COUNT=5, PRUNE_EVERY=3)
    for i in range(12):
        streaming.publish(chan, "tick", i, tenant="t1", wait=True)
    kept = seqs("t1", chan)
    assert kept[-1] == 12 and len(kept) <= 5 + 3 and kept == list(range(kept[0], 13))


def test_retention_by_age_keeps_the_newest(chan):
    old = timezone.now() - dt.timedelta(days=3)
    for seq in (1, 2, 3):
        StreamEvent.objects.create(tenant="t1", channel=chan, seq=seq, event="e", data=seq)
    StreamEvent.objects.filter(channel=chan).update(created_at=old)
    assert log.prune("t1", chan, 3, keep=100, max_age=3600) == 2
    assert seqs("t1", chan) == [3]  # the last seq must survive, or numbering would restart


def test_the_entity_continues_after_the_stored_head(streams, chan):
    StreamEvent.objects.create(tenant="t1", channel=chan, seq=41, event="e", data=None)
    assert streaming.publish(chan, "e", None, tenant="t1", wait=True) == 42


def test_redelivered_append_is_not_duplicated(streams, chan):
    from streaming.entities import Stream

    client = Stream.client(f"t1/{chan}")
    assert client.append.call(event="e", data=1, key="k1") == 1
    assert client.append.call(event="e", data=1, key="k1") == 1
    assert client.append.call(event="e", data=2, key="k2") == 2
    assert seqs("t1", chan) == [1, 2]


def ids(messages):
    return {m.id for m in messages}


def test_checks(settings):
    assert not {m.id for m in run_checks() if m.id.startswith("streaming.")} - {"streaming.W001"}
    settings.STREAMING = {"NOPE": 1, "RETENTION_COUNT": 0, "AUTHORIZE": "no.such.hook"}
    found = ids(run_checks())
    assert {"streaming.E002", "streaming.E005", "streaming.E004"} <= found
    settings.STREAMING = {}
    settings.CHANNEL_LAYERS = {}
    assert "streaming.E003" in ids(run_checks())
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    shared = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    assert ("streaming.W001" in ids(run_checks())) == shared
    settings.STREAMING = "nope"
    assert "streaming.E001" in ids(run_checks())
