"""A real runner faced with bad input: raw TCP frames and malformed stored messages."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from clusterkit import snowflake
from clusterkit.frames import HEADER, Call, Ping, Result, pack
from clusterkit.models import Message, Reply, ReplyStatus
from clusterkit.runner import Runner
from clusterkit.sharding import shard_for
from clusterkit.storage import OutgoingMessage, Storage
from tests.testapp.entities import Counter

pytestmark = pytest.mark.django_db(transaction=True)


class RawConnection:
    """A plain socket speaking the transport's framing, for hand-made frames."""

    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=10)

    def send_body(self, body: bytes) -> None:
        self.sock.sendall(HEADER.pack(len(body)) + body)

    def send(self, frame: Call | Ping | Result) -> None:
        self.sock.sendall(pack(frame))

    def _exactly(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError("the runner closed the connection")
            data += chunk
        return data

    def receive(self) -> Result:
        (size,) = HEADER.unpack(self._exactly(HEADER.size))
        frame = msgspec.json.decode(self._exactly(size), type=Result)
        return frame

    def ask(self, body: bytes) -> Result:
        self.send_body(body)
        return self.receive()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def conn(runner: Runner) -> Iterator[RawConnection]:
    connection = RawConnection(runner.address)
    yield connection
    connection.close()


def call_body(corr: int, entity_type: str, rpc: str, payload: Any, **extra: Any) -> bytes:
    """A call frame's JSON, built by hand so any field can be wrong."""
    frame = {
        "type": "call",
        "corr": corr,
        "entity_type": entity_type,
        "entity_id": "bad-input",
        "rpc": rpc,
        "payload": payload,
        **extra,
    }
    return msgspec.json.encode(frame)


def assert_alive(conn: RawConnection, corr: int) -> None:
    """The connection still answers: a ping and a good call."""
    conn.send(Ping(corr=corr))
    pong = conn.receive()
    assert (pong.corr, pong.ok) == (corr, True)
    good = conn.ask(call_body(corr + 1, "Counter", "get", {}))
    assert (good.corr, good.ok) == (corr + 1, True), good
    assert msgspec.json.decode(good.payload) == 0


# -- the volatile transport ------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b"\xff\x00 definitely not json", b"", b"{", b"[1, 2, 3]", b"null", b'"call"'],
    ids=["binary", "empty", "truncated", "array", "null", "string"],
)
def test_garbage_frame_is_malformed_and_connection_survives(
    conn: RawConnection, body: bytes
) -> None:
    result = conn.ask(body)
    assert result.ok is False
    assert result.error_type == "MalformedMessage"
    assert result.corr == 0
    assert result.error_message
    assert_alive(conn, 100)


def test_undecodable_frame_is_answered_to_its_corr(conn: RawConnection) -> None:
    result = conn.ask(b'{"type": "pong", "corr": 41}')
    assert (result.corr, result.ok, result.error_type) == (41, False, "MalformedMessage")
    result = conn.ask(b'{"type": "call", "corr": 42}')  # missing fields
    assert (result.corr, result.ok, result.error_type) == (42, False, "MalformedMessage")
    assert_alive(conn, 100)


@pytest.mark.parametrize(
    "headers", [["request_id"], "request_id=1", {"request_id": 1}, {"wait": None}, 7]
)
def test_wrong_headers_type_is_malformed(conn: RawConnection, headers: Any) -> None:
    result = conn.ask(call_body(7, "Counter", "get", {}, headers=headers))
    assert (result.corr, result.ok, result.error_type) == (7, False, "MalformedMessage")
    assert "headers" in result.error_message
    assert_alive(conn, 100)


def test_wrong_field_types_are_malformed(conn: RawConnection) -> None:
    for corr, body in enumerate(
        [
            call_body(1, 5, "get", {}),  # type: ignore[arg-type]
            call_body(1, "Counter", ["get"], {}),  # type: ignore[arg-type]
            call_body(1, "Counter", "get", {}, discard="no"),
            call_body(1, "Counter", "get", {}, entity_id=None),
        ],
        start=1,
    ):
        result = conn.ask(body.replace(b'"corr":1', f'"corr":{corr}'.encode()))
        assert (result.corr, result.ok, result.error_type) == (corr, False, "MalformedMessage")
    assert_alive(conn, 100)


def test_unknown_entity(conn: RawConnection) -> None:
    result = conn.ask(call_body(3, "NoSuchEntity", "get", {}))
    assert (result.corr, result.ok, result.error_type) == (3, False, "UnknownEntity")
    assert "NoSuchEntity" in result.error_message
    assert_alive(conn, 100)


def test_unknown_rpc(conn: RawConnection) -> None:
    result = conn.ask(call_body(4, "Counter", "no_such_rpc", {}))
    assert (result.corr, result.ok, result.error_type) == (4, False, "UnknownRpc")
    assert "no_such_rpc" in result.error_message
    assert_alive(conn, 100)


@pytest.mark.parametrize(
    "payload",
    [{"seconds": "slow"}, {"seconds": None}, {}, {"seconds": 0.01, "extra": 1}, [0.01], 5, "x"],
)
def test_payload_with_wrong_types_is_invalid(conn: RawConnection, payload: Any) -> None:
    result = conn.ask(call_body(5, "Counter", "slow", payload))
    assert (result.corr, result.ok, result.error_type) == (5, False, "InvalidPayload")
    assert_alive(conn, 100)


def test_persisted_rpc_is_refused_over_the_transport(conn: RawConnection) -> None:
    result = conn.ask(call_body(6, "Counter", "increment", {"by": 1}))
    assert (result.corr, result.ok, result.error_type) == (6, False, "InvalidPayload")
    assert Message.objects.count() == 0
    assert_alive(conn, 100)


def test_pipelined_bad_frames_each_get_one_answer(runner: Runner, conn: RawConnection) -> None:
    bodies = {
        11: b'{"type": "call", "corr": 11, "headers": 3}',
        12: call_body(12, "NoSuchEntity", "get", {}),
        13: call_body(13, "Counter", "nope", {}),
        14: call_body(14, "Counter", "slow", {"seconds": "x"}),
        15: call_body(15, "Counter", "get", {}),
        16: msgspec.json.encode({"type": "ping", "corr": 16}),
    }
    expected = {
        11: "MalformedMessage", 12: "UnknownEntity", 13: "UnknownRpc", 14: "InvalidPayload",
        15: "", 16: "",
    }  # fmt: skip
    conn.sock.sendall(b"".join(HEADER.pack(len(b)) + b for b in bodies.values()))
    answers = [conn.receive() for _ in bodies]
    assert sorted(a.corr for a in answers) == sorted(bodies)
    assert {a.corr: a.error_type for a in answers} == expected
    assert {a.corr for a in answers if a.ok} == {15, 16}


def test_after_all_that_a_normal_volatile_call_succeeds(
    runner: Runner, conn: RawConnection
) -> None:
    for body in [
        b"\x00garbage",
        call_body(1, "Counter", "get", {}, headers=[1]),
        call_body(2, "NoSuchEntity", "get", {}),
        call_body(3, "Counter", "nope", {}),
        call_body(4, "Counter", "slow", {"seconds": "x"}),
    ]:
        assert conn.ask(body).ok is False
    counter = Counter.client("after-bad-input")
    assert counter.get.call() == 0
    assert counter.slow.call(seconds=0.01) == 0.01
    # and a second, fresh connection to the runner works too
    other = RawConnection(runner.address)
    try:
        assert_alive(other, 200)
    finally:
        other.close()


# -- stored messages -------------------------------------------------------------------------


def store(
    entity_type: str,
    rpc: str,
    payload: str,
    headers: str = "{}",
    entity_id: str = "bad-row",
) -> int:
    """Insert one message row directly, as a buggy or foreign writer might."""
    message = OutgoingMessage(
        id=snowflake.next_id(),
        message_key=None,
        shard_group="default",
        shard_id=shard_for(entity_id),
        entity_type=entity_type,
        entity_id=entity_id,
        rpc=rpc,
        payload=payload,
        headers=headers,
    )
    return Storage().save([message])[0]


def wait_for_replies(ids: list[int], timeout: float = 20.0) -> dict[int, Reply]:
    deadline = time.monotonic() + timeout
    while True:
        found = {r.request_id: r for r in Reply.objects.filter(request_id__in=ids)}
        if len(found) == len(ids):
            return found
        assert time.monotonic() < deadline, f"no reply to {set(ids) - set(found)}"
        time.sleep(0.05)


BAD_ROWS: list[tuple[str, dict[str, str], str]] = [
    ("headers-not-json", {"headers": "not json{"}, "MalformedMessage"),
    ("headers-empty", {"headers": ""}, "MalformedMessage"),
    ("headers-array", {"headers": '["wait"]'}, "MalformedMessage"),
    ("headers-int-value", {"headers": '{"wait": 1}'}, "MalformedMessage"),
    ("headers-nested", {"headers": '{"request_id": {"a": "b"}}'}, "MalformedMessage"),
    ("unknown-entity", {"entity_type": "NoSuchEntity"}, "UnknownEntity"),
    ("unknown-rpc", {"rpc": "no_such_rpc"}, "UnknownRpc"),
    ("payload-wrong-type", {"payload": '{"by": "two"}'}, "InvalidPayload"),
    ("payload-unknown-field", {"payload": '{"by": 1, "extra": true}'}, "InvalidPayload"),
    ("payload-not-json", {"payload": "by=1"}, "InvalidPayload"),
    ("payload-not-object", {"payload": "[1]"}, "InvalidPayload"),
]


@pytest.mark.parametrize(
    ("changes", "error_type"), [row[1:] for row in BAD_ROWS], ids=[row[0] for row in BAD_ROWS]
)
def test_bad_stored_message_gets_one_failure_reply(
    runner: Runner, changes: dict[str, str], error_type: str
) -> None:
    fields = {"entity_type": "Counter", "rpc": "increment", "payload": '{"by": 1}', **changes}
    message_id = store(**fields)
    reply = wait_for_replies([message_id])[message_id]
    assert reply.status == ReplyStatus.FAILURE
    error = msgspec.json.decode(reply.payload)
    assert error["type"] == error_type
    assert error["message"]
    message = Message.objects.get(pk=message_id)
    assert message.processed is True
    assert message.attempts == 1
    time.sleep(0.3)  # nothing more is written for it
    assert Reply.objects.filter(request_id=message_id).count() == 1
    assert runner.stats.processed == 0


def test_runner_keeps_serving_after_bad_rows(runner: Runner) -> None:
    ids = [
        store(**{"entity_type": "Counter", "rpc": "increment", "payload": '{"by": 1}', **changes})
        for _, changes, _ in BAD_ROWS
    ]
    replies = wait_for_replies(ids)
    assert [msgspec.json.decode(replies[i].payload)["type"] for i in ids] == [
        error_type for _, _, error_type in BAD_ROWS
    ]
    assert all(r.status == ReplyStatus.FAILURE for r in replies.values())
    # the same entity, and others, still work: persisted and volatile
    assert Counter.client("bad-row").increment.call(by=2) == 2
    assert Counter.client("bad-row").get.call() == 2
    assert Counter.client("fresh").increment.call(by=5) == 5
    assert Reply.objects.count() == len(ids) + 2
