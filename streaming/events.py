"""An event as it travels through a process, with its SSE and WebSocket frames built once."""

from __future__ import annotations

import dataclasses
import functools
import json

import msgspec

_encode = msgspec.json.Encoder().encode


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    """Event ``seq`` of ``(tenant, channel)``; ``data`` is its JSON text (one line)."""

    tenant: str
    channel: str
    seq: int
    event: str
    data: str
    ts: float = 0.0  # when the stream appended it (Unix seconds), for latency figures

    @property
    def key(self) -> tuple[str, str]:
        return (self.tenant, self.channel)

    def to_message(self, origin: str) -> dict[str, object]:
        """The channel-layer message (plain JSON-compatible values, no pickle)."""
        return {
            "type": "streaming.event",
            "t": self.tenant,
            "c": self.channel,
            "s": self.seq,
            "e": self.event,
            "d": self.data,
            "ts": self.ts,
            "o": origin,
        }

    @classmethod
    def from_message(cls, message: dict[str, object]) -> Event:
        """The event of a channel-layer message; ``ValueError`` when malformed."""
        try:
            tenant, channel, seq = message["t"], message["c"], message["s"]
            event, data, ts = message["e"], message["d"], message.get("ts", 0.0)
        except KeyError as exc:
            raise ValueError(f"missing {exc}") from None
        if not (
            isinstance(tenant, str) and isinstance(channel, str) and isinstance(event, str)
            and isinstance(data, str) and isinstance(seq, int) and isinstance(ts, int | float)
        ):
            raise ValueError("bad field types")
        return cls(tenant, channel, seq, event, data, float(ts))


@functools.lru_cache(maxsize=4096)
def _sse(seq: int, event: str, data: str) -> bytes:
    return f"id: {seq}\nevent: {event}\ndata: {data}\n\n".encode()


def sse_frame(ev: Event) -> bytes:
    """``id:``/``event:``/``data:`` lines of ``ev`` (cached: shared by every subscriber)."""
    return _sse(ev.seq, ev.event, ev.data)


@functools.lru_cache(maxsize=4096)
def _ws(tenant: str, channel: str, seq: int, event: str, data: str) -> str:
    return (
        f'{{"type":"event","channel":{json.dumps(channel)},"seq":{seq},'
        f'"event":{json.dumps(event)},"data":{data}}}'
    )


def ws_frame(ev: Event) -> str:
    """The WebSocket JSON text frame of ``ev`` (cached)."""
    return _ws(ev.tenant, ev.channel, ev.seq, ev.event, ev.data)


@dataclasses.dataclass(frozen=True, slots=True)
class Reset:
    """The subscriber missed events no longer in the log; the stream continues after ``seq``."""

    channel: str
    seq: int
    reason: str

    def sse(self) -> bytes:
        data = _encode({"seq": self.seq, "reason": self.reason}).decode()
        return f"id: {self.seq}\nevent: reset\ndata: {data}\n\n".encode()

    def ws(self) -> dict[str, object]:
        return {"type": "reset", "channel": self.channel, "seq": self.seq, "reason": self.reason}


def encode_data(data: object) -> str:
    """``data`` as one line of JSON."""
    return _encode(data).decode()
