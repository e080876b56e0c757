"""The WebSocket endpoint through Channels' WebsocketCommunicator."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator

import streaming

from .support import FakeUser, ws_app
from .test_sse import subscribed

pytestmark = pytest.mark.django_db(transaction=True)


async def connect(user: Any = None, tenant: bytes = b"t1") -> WebsocketCommunicator:
    comm = WebsocketCommunicator(ws_app(user), "/streams/ws/", headers=[(b"x-tenant", tenant)])
    connected, _ = await comm.connect()
    assert connected
    return comm


async def frames(comm: WebsocketCommunicator, count: int, kind: str = "event") -> list[dict]:
    out: list[dict] = []
    while len(out) < count:
        frame = json.loads(await comm.receive_from(10))
        if frame["type"] == kind:
            out.append(frame)
    return out


async def test_two_channels_on_one_socket_and_unsubscribe(streams, chan):
    other = chan + "-b"
    comm = await connect()
    await comm.send_json_to({"type": "subscribe", "channel": chan})
    assert await comm.receive_json_from(10) == {"type": "subscribed", "channel": chan, "seq": 0}
    await comm.send_json_to({"type": "subscribe", "channel": other})
    assert (await comm.receive_json_from(10))["type"] == "subscribed"
    await subscribed(chan)
    await subscribed(other)
    for i in range(5):
        await streaming.apublish(chan, "a", i, tenant="t1")
        await streaming.apublish(other, "b", i, tenant="t1")
    got = await frames(comm, 10)
    assert [f["seq"] for f in got if f["channel"] == chan] == [1, 2, 3, 4, 5]
    assert [f["data"] for f in got if f["channel"] == other] == [0, 1, 2, 3, 4]
    await comm.send_json_to({"type": "unsubscribe", "channel": other})
    assert (await frames(comm, 1, "unsubscribed"))[0]["channel"] == other
    await streaming.apublish(other, "b", 99, tenant="t1", wait=True)
    await streaming.apublish(chan, "a", 99, tenant="t1", wait=True)
    [last] = await frames(comm, 1)
    assert (last["channel"], last["seq"]) == (chan, 6)
    await comm.disconnect()


async def test_resume_from_a_sequence_number(streams, chan):
    for i in range(8):
        await streaming.apublish(chan, "a", i, tenant="t1", wait=True)
    comm = await connect()
    await comm.send_json_to({"type": "subscribe", "channel": chan, "last_seq": 5})
    assert (await comm.receive_json_from(10))["type"] == "subscribed"
    assert [f["seq"] for f in await frames(comm, 3)] == [6, 7, 8]
    await comm.disconnect()


async def test_reset_and_heartbeat(streams, chan, configure):
    configure(RETENTION_COUNT=2, PRUNE_EVERY=1)
    for i in range(6):
        await streaming.apublish(chan, "a", i, tenant="t1", wait=True)
    comm = await connect()
    await comm.send_json_to({"type": "subscribe", "channel": chan, "last_seq": 1})
    [reset] = await frames(comm, 1, "reset")
    assert reset == {"type": "reset", "channel": chan, "seq": 6, "reason": "expired"}
    await frames(comm, 1, "heartbeat")
    await comm.send_json_to({"type": "ping"})
    await frames(comm, 1, "pong")
    await comm.disconnect()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "bad-request"),
        ("[1, 2]", "bad-request"),
        ('{"type": "dance"}', "bad-request"),
        ('{"type": "subscribe", "channel": "a b"}', "bad-channel"),
        ('{"type": "subscribe", "channel": 5}', "bad-channel"),
        ('{"type": "subscribe", "channel": "ok", "last_seq": "x"}', "bad-request"),
        ('{"type": "subscribe", "channel": "ok", "last_seq": -3}', "bad-request"),
        ('{"type": "subscribe", "channel": "ok", "last_seq": true}', "bad-request"),
        ('{"type": "unsubscribe", "channel": "never"}', "not-subscribed"),
    ],
)
async def test_malformed_frames(chan, frame, code):
    comm = await connect()
    await comm.send_to(text_data=frame)
    reply = json.loads(await comm.receive_from(10))
    assert reply["type"] == "error" and reply["code"] == code
    await comm.disconnect()


async def test_authorization_and_tenant_isolation(streams, chan, configure):
    configure(AUTHORIZE="tests.streaming.support.only_alice_reads_secret")
    anon = await connect(FakeUser(is_authenticated=False))
    await anon.send_json_to({"type": "subscribe", "channel": chan})
    assert (await anon.receive_json_from(10))["code"] == "forbidden"
    bob = await connect(FakeUser("bob"), b"t2")
    await bob.send_json_to({"type": "subscribe", "channel": "secret-x"})
    assert (await bob.receive_json_from(10))["code"] == "forbidden"
    await bob.send_json_to({"type": "subscribe", "channel": chan, "last_seq": 0})
    assert (await bob.receive_json_from(10))["type"] == "subscribed"
    await subscribed(chan, "t2")
    await streaming.apublish(chan, "a", "t1 only", tenant="t1", wait=True)
    await streaming.apublish(chan, "a", "t2 only", tenant="t2", wait=True)
    [frame] = await frames(bob, 1)
    assert frame["data"] == "t2 only"
    await asyncio.sleep(0.5)
    rest = []
    while not await bob.receive_nothing(0.05):
        rest.append(json.loads(await bob.receive_from(1)))
    assert {f["type"] for f in rest} <= {"heartbeat"}
    for comm in (anon, bob):
        await comm.disconnect()


async def test_a_failed_stream_can_be_subscribed_again(streams, chan, monkeypatch):
    from streaming.fanout import Subscription

    comm = await connect()
    read = Subscription.read
    failures = [RuntimeError("the log went away")]

    async def failing_once(self: Subscription, timeout: float | None = None) -> list[Any]:
        if failures:
            raise failures.pop()
        return await read(self, timeout)

    monkeypatch.setattr(Subscription, "read", failing_once)
    await comm.send_json_to({"type": "subscribe", "channel": chan})
    assert (await comm.receive_json_from(10))["type"] == "subscribed"
    error = await comm.receive_json_from(10)
    assert (error["type"], error["code"], error["channel"]) == ("error", "internal", chan)
    await comm.send_json_to({"type": "subscribe", "channel": chan, "last_seq": 0})
    assert (await comm.receive_json_from(10))["type"] == "subscribed"
    await subscribed(chan)
    await streaming.apublish(chan, "a", 1, tenant="t1")
    assert [f["seq"] for f in await frames(comm, 1)] == [1]
    await comm.disconnect()
