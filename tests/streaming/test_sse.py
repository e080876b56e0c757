"""The SSE endpoint through Channels' HttpCommunicator."""

from __future__ import annotations

import asyncio
import json

import pytest

import streaming
from streaming.fanout import Subscription, get_hub
from streaming.models import StreamEvent

from .support import FakeUser, SSEClient, sse_app


def sample(name: str, transport: str = "sse") -> float:
    """The current value of a streaming metric of this process."""
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, {"transport": transport}) or 0.0


pytestmark = pytest.mark.django_db(transaction=True)
T1 = [(b"x-tenant", b"t1")]
T2 = [(b"x-tenant", b"t2")]


async def subscribed(channel: str, tenant: str = "t1", count: int = 1) -> None:
    """Wait until ``count`` subscribers of the stream are registered with this loop's hub."""
    hub = get_hub()
    for _ in range(200):
        stream = hub.streams.get((tenant, channel))
        if stream is not None and len(stream.subs) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("no subscriber")


async def test_live_events_headers_retry_and_heartbeat(streams, chan):
    client = SSEClient(sse_app(), f"/streams/{chan}/events/", T1)
    start = await client.open()
    assert client.status == 200
    assert client.header(b"content-type") == b"text/event-stream; charset=utf-8"
    assert client.header(b"cache-control") == b"no-cache"
    assert client.header(b"x-accel-buffering") == b"no"
    assert await client.body() == b"retry: 3000\n\n"
    assert start
    await subscribed(chan)
    for i in range(20):
        await streaming.apublish(chan, "tick", {"n": i}, tenant="t1")
    events = await client.events(20)
    assert [e.id for e in events] == [str(i) for i in range(1, 21)]
    assert [json.loads(e.data or "") for e in events] == [{"n": i} for i in range(20)]
    assert {e.event for e in events} == {"tick"}
    # Quiet stream: a heartbeat comment within HEARTBEAT_INTERVAL (0.3 s in the tests).
    client.parser.feed(await client.body(timeout=3))
    assert any(f.comment == "heartbeat" for f in client.parser.frames)
    await client.close()


@pytest.mark.parametrize("how", ["header", "query"])
async def test_resume_after_disconnect_no_gap_no_duplicate(streams, chan, how):
    for i in range(5):
        await streaming.apublish(chan, "tick", i, tenant="t1", wait=True)
    first = SSEClient(sse_app(), f"/streams/{chan}/events/?lastEventId=0", T1)
    await first.open()
    seen = [e.id for e in await first.events(5)]
    await first.close()
    for i in range(5, 12):  # published while nobody listens
        await streaming.apublish(chan, "tick", i, tenant="t1")
    await streaming.apublish(chan, "tick", 12, tenant="t1", wait=True)
    last = seen[-1]
    if how == "header":
        headers = [*T1, (b"last-event-id", last.encode())]
        second = SSEClient(sse_app(), f"/streams/{chan}/events/", headers)
    else:
        second = SSEClient(sse_app(), f"/streams/{chan}/events/?lastEventId={last}", T1)
    await second.open()
    await subscribed(chan)
    await streaming.apublish(chan, "tick", 13, tenant="t1")
    resumed = [e.id for e in await second.events(9)]
    assert seen + resumed == [str(i) for i in range(1, 15)]
    await second.close()


async def test_reset_after_retention(streams, chan, configure):
    configure(RETENTION_COUNT=3, PRUNE_EVERY=1)
    for i in range(10):
        await streaming.apublish(chan, "tick", i, tenant="t1", wait=True)
    client = SSEClient(sse_app(), f"/streams/{chan}/events/?lastEventId=2", T1)
    await client.open()
    [reset] = await client.events(1)
    assert reset.event == "reset" and reset.id == "10"
    assert json.loads(reset.data or "") == {"seq": 10, "reason": "expired"}
    await subscribed(chan)
    await streaming.apublish(chan, "tick", 10, tenant="t1")
    assert [e.id for e in await client.events(2)][1:] == ["11"]
    await client.close()


async def test_forged_future_id_gets_a_reset(streams, chan):
    await streaming.apublish(chan, "tick", 0, tenant="t1", wait=True)
    client = SSEClient(sse_app(), f"/streams/{chan}/events/", [*T1, (b"last-event-id", b"999")])
    await client.open()
    [reset] = await client.events(1)
    assert reset.event == "reset" and reset.id == "1"
    assert json.loads(reset.data or "")["reason"] == "unknown-id"
    await client.close()


@pytest.mark.parametrize(
    "bad", [b"abc", b"-1", b"1.5", b"1e9", b"9" * 40, b"\xff\xfe", b"1; DROP TABLE", b"t2:5"]
)
async def test_malformed_last_event_id_is_400(chan, bad):
    client = SSEClient(sse_app(), f"/streams/{chan}/events/", [*T1, (b"last-event-id", bad)])
    await client.open()
    assert client.status == 400
    assert json.loads(await client.body())["error"] == "bad-request"


async def test_bad_channel_and_method(chan):
    client = SSEClient(sse_app(), "/streams/-bad/events/", T1)
    await client.open()
    assert client.status == 400
    assert json.loads(await client.body())["error"] == "bad-channel"
    from channels.testing import HttpCommunicator

    comm = HttpCommunicator(sse_app(), "POST", f"/streams/{chan}/events/", headers=T1)
    response = await comm.get_response()
    assert response["status"] == 405


async def test_anonymous_is_refused(chan):
    client = SSEClient(sse_app(FakeUser(is_authenticated=False)), f"/streams/{chan}/events/", T1)
    await client.open()
    assert client.status == 403


async def test_authorization_hook(chan, configure):
    configure(AUTHORIZE="tests.streaming.support.only_alice_reads_secret")
    bob = SSEClient(sse_app(FakeUser("bob")), "/streams/secret-plans/events/", T1)
    await bob.open()
    assert bob.status == 403
    alice = SSEClient(sse_app(FakeUser("alice")), "/streams/secret-plans/events/", T1)
    await alice.open()
    assert alice.status == 200
    await alice.close()


async def test_tenant_isolation(streams, chan):
    """Same channel name, two tenants: each sees only its own events and numbering."""
    a = SSEClient(sse_app(), f"/streams/{chan}/events/?lastEventId=0", T1)
    b = SSEClient(sse_app(), f"/streams/{chan}/events/?lastEventId=0", T2)
    await a.open()
    await b.open()
    await subscribed(chan, "t1")
    await subscribed(chan, "t2")
    await streaming.apublish(chan, "tick", "for-t1", tenant="t1")
    await streaming.apublish(chan, "tick", "for-t2", tenant="t2")
    await streaming.apublish(chan, "tick", "for-t1-again", tenant="t1")
    assert [json.loads(e.data or "") for e in await a.events(2)] == ["for-t1", "for-t1-again"]
    assert [json.loads(e.data or "") for e in await b.events(1)] == ["for-t2"]
    await asyncio.sleep(0.3)
    assert len(b.parser.events()) == 1
    # A resume id means "seq of *my* tenant's channel": t2's Last-Event-ID never reads t1.
    c = SSEClient(sse_app(), f"/streams/{chan}/events/", [*T2, (b"last-event-id", b"0")])
    await c.open()
    assert [json.loads(e.data or "") for e in await c.events(1)] == ["for-t2"]
    for client in (a, b, c):
        await client.close()


async def test_tenant_in_the_url_is_not_trusted(streams, chan):
    """A client of t2 asking for a t1-looking channel reads t2's channel of that name."""
    await streaming.apublish(f"t1/{chan}", "tick", "t1-secret", tenant="t1", wait=True)
    await streaming.apublish(chan, "tick", "t1-secret", tenant="t1", wait=True)
    client = SSEClient(sse_app(), f"/streams/t1/{chan}/events/?lastEventId=0", T2)
    await client.open()
    assert client.status == 200
    await asyncio.sleep(0.3)
    client.parser.feed(await client.body())
    assert client.parser.events() == []
    await client.close()


async def test_slow_subscriber_with_a_tiny_buffer_sees_every_event(
    streams, chan, configure, monkeypatch
):
    configure(SUBSCRIBER_BUFFER=3)
    from streaming.consumers import EventStreamConsumer

    original = EventStreamConsumer.send_body

    async def slow_send_body(self, body, *, more_body=False):  # a client on a slow link
        await asyncio.sleep(0.03)
        await original(self, body, more_body=more_body)

    monkeypatch.setattr(EventStreamConsumer, "send_body", slow_send_body)
    before = {name: sample(name) for name in
              ("clusterkit_stream_subscribers", "clusterkit_stream_events_dropped_total")}
    client = SSEClient(sse_app(), f"/streams/{chan}/events/", T1)
    await client.open()
    await subscribed(chan)
    assert sample("clusterkit_stream_subscribers") == before["clusterkit_stream_subscribers"] + 1
    [sub] = get_hub().streams[("t1", chan)].subs
    for i in range(60):
        await streaming.apublish(chan, "tick", i, tenant="t1")
    await streaming.apublish(chan, "tick", 60, tenant="t1", wait=True)
    await asyncio.sleep(0.5)  # the events pile up in the 3-event buffer meanwhile
    events = await client.events(61)
    assert [int(e.id or 0) for e in events] == list(range(1, 62))
    assert [json.loads(e.data or "") for e in events] == list(range(61))
    assert sub.dropped > 0 and sub.filled > 0  # the buffer did overflow, the log filled it
    assert sample("clusterkit_stream_events_dropped_total") == (
        before["clusterkit_stream_events_dropped_total"] + sub.dropped
    )
    await client.close()
    await asyncio.sleep(0.2)
    assert sample("clusterkit_stream_subscribers") == before["clusterkit_stream_subscribers"]


async def test_layer_drops_are_filled_from_the_log(chan):
    """Offer 1, 2, 5, 4, 7 (3 and 6 "lost by the layer"): the reader gets 1..7 in order."""
    for seq in range(1, 8):
        await StreamEvent.objects.acreate(tenant="t1", channel=chan, seq=seq, event="e", data=seq)
    filled_before = sample("clusterkit_stream_events_gap_filled_total", "websocket")
    sub = Subscription("t1", chan, buffer=100, transport="websocket")
    await sub.start(0)
    sub.backlog_to = 0  # pretend the log replay was already served up to 0
    from streaming.events import Event

    for seq in (1, 2, 5, 4, 7):
        sub.offer(Event("t1", chan, seq, "e", str(seq)))
    got: list[int] = []
    while len(got) < 7:
        got.extend(item.seq for item in await sub.read(timeout=2))
    assert got == [1, 2, 3, 4, 5, 6, 7]
    assert sub.filled >= 2
    gap_filled = sample("clusterkit_stream_events_gap_filled_total", "websocket") - filled_before
    assert gap_filled == sub.filled
    assert await sub.read(timeout=0.1) == []
    await sub.stop()
