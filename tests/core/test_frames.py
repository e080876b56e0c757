"""Frames of the volatile transport: pack/decode round trips, garbage never crashes oddly."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clusterkit import frames, transport
from clusterkit.frames import Call, Ping, Result

CORR = st.integers(0, 2**63 - 1)
TEXT = st.text(max_size=30)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=15,
)
RAW = JSON_VALUES.map(lambda v: msgspec.Raw(msgspec.json.encode(v)))

calls = st.builds(
    Call,
    corr=CORR,
    entity_type=TEXT,
    entity_id=TEXT,
    rpc=TEXT,
    payload=RAW,
    headers=st.dictionaries(TEXT, TEXT, max_size=5),
    discard=st.booleans(),
)
results = st.builds(
    Result,
    corr=CORR,
    ok=st.booleans(),
    payload=RAW,
    error_type=TEXT,
    error_message=st.text(max_size=200),
)
pings = st.builds(Ping, corr=CORR)


def unpack(data: bytes) -> frames.Frame:
    """Split one packed frame into its header and body, and decode the body."""
    (size,) = frames.HEADER.unpack(data[: frames.HEADER.size])
    body = data[frames.HEADER.size :]
    assert size == len(body)
    frame: frames.Frame = frames.decoder.decode(body)
    return frame


def same(a: Any, b: Any) -> bool:
    """Field-by-field equality, comparing ``Raw`` payloads by their JSON value."""
    if type(a) is not type(b):
        return False
    for field in a.__struct_fields__:
        x, y = getattr(a, field), getattr(b, field)
        if isinstance(x, msgspec.Raw):
            if msgspec.json.decode(x) != msgspec.json.decode(y):
                return False
        elif x != y:
            return False
    return True


@settings(max_examples=150)
@given(frame=st.one_of(calls, results, pings))
def test_pack_decode_round_trip(frame: frames.Frame) -> None:
    decoded = unpack(frames.pack(frame))
    assert same(decoded, frame)
    assert frames.pack(decoded) == frames.pack(frame)


@settings(max_examples=100)
@given(frame=calls)
def test_call_payload_bytes_are_kept_verbatim(frame: Call) -> None:
    decoded = unpack(frames.pack(frame))
    assert isinstance(decoded, Call)
    assert bytes(decoded.payload) == bytes(frame.payload)


def test_defaults_are_omitted_on_the_wire() -> None:
    body = frames.pack(
        Call(corr=1, entity_type="E", entity_id="1", rpc="r", payload=msgspec.Raw(b"{}"))
    )[4:]
    assert msgspec.json.decode(body) == {
        "type": "call", "corr": 1, "entity_type": "E", "entity_id": "1", "rpc": "r", "payload": {},
    }  # fmt: skip
    decoded = frames.decoder.decode(body)
    assert isinstance(decoded, Call)
    assert decoded.headers == {}
    assert decoded.discard is False
    ok = frames.decoder.decode(frames.pack(Result(corr=2, ok=True))[4:])
    assert isinstance(ok, Result)
    assert bytes(ok.payload) == b"null"
    assert ok.error_type == ok.error_message == ""


def test_tags_pick_the_frame_type() -> None:
    assert isinstance(frames.decoder.decode(b'{"type": "ping", "corr": 5}'), Ping)
    assert isinstance(frames.decoder.decode(b'{"type": "result", "corr": 5, "ok": true}'), Result)


def test_header_is_big_endian_length() -> None:
    data = frames.pack(Ping(corr=1))
    assert data[:4] == len(data[4:]).to_bytes(4, "big")


# -- garbage --------------------------------------------------------------------------------


def decode_or_msgspec_error(body: bytes) -> frames.Frame | None:
    """Decode ``body``; a failure must be one of msgspec's own errors."""
    try:
        frame: frames.Frame = frames.decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    except Exception as exc:  # pragma: no cover - this is the failure being looked for
        pytest.fail(f"decoding {body!r} raised {type(exc).__name__}: {exc}")
    return frame


@settings(max_examples=200)
@given(st.binary(max_size=200))
def test_random_bytes_raise_msgspec_errors(body: bytes) -> None:
    decode_or_msgspec_error(body)


@settings(max_examples=200)
@given(JSON_VALUES)
def test_random_json_raises_msgspec_errors(value: Any) -> None:
    decode_or_msgspec_error(msgspec.json.encode(value))


@settings(max_examples=200)
@given(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["call", "result", "ping", "nope", ""]) | JSON_VALUES},
        optional={
            "corr": JSON_VALUES,
            "entity_type": JSON_VALUES,
            "entity_id": JSON_VALUES,
            "rpc": JSON_VALUES,
            "payload": JSON_VALUES,
            "headers": JSON_VALUES,
            "discard": JSON_VALUES,
            "ok": JSON_VALUES,
            "error_type": JSON_VALUES,
        },
    )
)
def test_frame_shaped_garbage_raises_msgspec_errors(value: dict[str, Any]) -> None:
    frame = decode_or_msgspec_error(msgspec.json.encode(value))
    if frame is not None:  # whatever decodes is a well-typed frame
        assert isinstance(frame, Call | Result | Ping)
        assert isinstance(frame.corr, int)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\x00\x01\x02",
        b"{",
        b"[]",
        b"null",
        b'{"corr": 1}',
        b'{"type": "call", "corr": 1}',
        b'{"type": "call", "corr": "1", "entity_type": "E", "entity_id": "1", "rpc": "r",'
        b' "payload": 1}',
        b'{"type": "call", "corr": 1, "entity_type": "E", "entity_id": "1", "rpc": "r",'
        b' "payload": 1, "headers": ["a"]}',
        b'{"type": "call", "corr": 1, "entity_type": "E", "entity_id": "1", "rpc": "r",'
        b' "payload": 1, "headers": {"a": 1}}',
        b'{"type": "ping", "corr": 1.5}',
        b'{"type": "ping"}',
        b'{"type": "pong", "corr": 1}',
    ],
)
def test_known_garbage_raises_msgspec_errors(body: bytes) -> None:
    with pytest.raises((msgspec.DecodeError, msgspec.ValidationError)):
        frames.decoder.decode(body)


@settings(max_examples=200)
@given(st.binary(max_size=100) | JSON_VALUES.map(msgspec.json.encode))
def test_malformed_reply_can_always_be_sent(body: bytes) -> None:
    """The server's answer to an undecodable frame is itself a valid frame."""
    try:
        frames.decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        reply = transport._malformed(body, exc)
        decoded = unpack(frames.pack(reply))
        assert isinstance(decoded, Result)
        assert decoded.ok is False
        assert decoded.error_type == "MalformedMessage"


# -- reading frames off a stream ----------------------------------------------------------------


def test_read_frame_reads_consecutive_frames() -> None:
    async def scenario() -> list[bytes]:
        reader = asyncio.StreamReader()
        reader.feed_data(frames.pack(Ping(corr=1)) + frames.pack(Ping(corr=2)))
        reader.feed_eof()
        first = await transport.read_frame(reader)
        second = await transport.read_frame(reader)
        with pytest.raises(asyncio.IncompleteReadError):
            await transport.read_frame(reader)
        return [first, second]

    bodies = asyncio.run(scenario())
    decoded = [frames.decoder.decode(b) for b in bodies]
    assert [f.corr for f in decoded] == [1, 2]


def test_read_frame_refuses_oversize_frames() -> None:
    async def scenario() -> None:
        reader = asyncio.StreamReader()
        reader.feed_data(frames.HEADER.pack(frames.MAX_FRAME + 1))
        with pytest.raises(ConnectionError):
            await transport.read_frame(reader)

    asyncio.run(scenario())
