"""The envelopes of the volatile transport: length-prefixed JSON frames (msgspec)."""

from __future__ import annotations

import struct

import msgspec

HEADER = struct.Struct(">I")
MAX_FRAME = 64 * 1024 * 1024


class Call(msgspec.Struct, tag="call", omit_defaults=True):
    """A volatile call to an entity."""

    corr: int
    entity_type: str
    entity_id: str
    rpc: str
    payload: msgspec.Raw
    headers: dict[str, str] = {}
    discard: bool = False


class Result(msgspec.Struct, tag="result", omit_defaults=True):
    """The reply to a :class:`Call`: ``payload`` on success, else the error's type/message."""

    corr: int
    ok: bool
    payload: msgspec.Raw = msgspec.Raw(b"null")
    error_type: str = ""
    error_message: str = ""


class Ping(msgspec.Struct, tag="ping"):
    """Liveness probe; answered with a :class:`Result`."""

    corr: int


Frame = Call | Result | Ping
encoder = msgspec.json.Encoder()
decoder = msgspec.json.Decoder(Frame)


def pack(frame: Frame) -> bytes:
    """The bytes of ``frame`` on the wire."""
    body = encoder.encode(frame)
    return HEADER.pack(len(body)) + body
