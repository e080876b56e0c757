"""Helpers of the streaming tests: a header tenant resolver, a fake user, an SSE parser."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from channels.routing import URLRouter
from channels.testing import HttpCommunicator, WebsocketCommunicator
from django.http import HttpRequest

from streaming.auth import StreamingMiddleware
from streaming.routing import http_urlpatterns, websocket_urlpatterns


def tenant_from_header(request: HttpRequest) -> str | None:
    """The test projects' tenant resolver: the ``X-Tenant`` header."""
    return request.headers.get("X-Tenant")


def only_alice_reads_secret(user: Any, tenant: str, channel: str) -> bool:
    """An ``AUTHORIZE`` hook: authenticated users; ``secret*`` channels for alice only."""
    if not getattr(user, "is_authenticated", False):
        return False
    return not channel.startswith("secret") or getattr(user, "username", "") == "alice"


@dataclass
class FakeUser:
    username: str = "bob"
    is_authenticated: bool = True


class WithUser:
    """ASGI middleware putting ``user`` in the scope, as Channels' auth stack would."""

    def __init__(self, inner: Any, user: Any) -> None:
        self.inner, self.user = inner, user

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.inner({**scope, "user": self.user}, receive, send)


def sse_app(user: Any = None) -> Any:
    return WithUser(StreamingMiddleware(URLRouter(http_urlpatterns)), user or FakeUser())


def ws_app(user: Any = None) -> Any:
    return WithUser(StreamingMiddleware(URLRouter(websocket_urlpatterns)), user or FakeUser())


@dataclass
class Frame:
    id: str | None = None
    event: str | None = None
    data: str | None = None
    comment: str | None = None
    retry: int | None = None


@dataclass
class SSEParser:
    """Incremental ``text/event-stream`` parser."""

    buffer: str = ""
    frames: list[Frame] = field(default_factory=list)

    def feed(self, chunk: bytes) -> list[Frame]:
        self.buffer += chunk.decode()
        new: list[Frame] = []
        while "\n\n" in self.buffer:
            block, self.buffer = self.buffer.split("\n\n", 1)
            frame = Frame()
            for line in block.split("\n"):
                if line.startswith(":"):
                    frame.comment = line[1:].strip()
                    continue
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "retry":
                    frame.retry = int(value)
                elif name in ("id", "event", "data"):
                    setattr(frame, name, value)
            new.append(frame)
        self.frames.extend(new)
        return new

    def events(self) -> list[Frame]:
        return [f for f in self.frames if f.event is not None]


class SSEClient:
    """An SSE request through ``HttpCommunicator``; the response never ends, so read chunks."""

    def __init__(self, app: Any, path: str, headers: list[tuple[bytes, bytes]] | None = None):
        self.comm = HttpCommunicator(app, "GET", path, headers=headers or [])
        self.parser = SSEParser()
        self.start: dict[str, Any] | None = None

    async def open(self, timeout: float = 10) -> dict[str, Any]:
        await self.comm.send_input({"type": "http.request", "body": b"", "more_body": False})
        self.start = await self.comm.receive_output(timeout)
        assert self.start["type"] == "http.response.start"
        return self.start

    @property
    def status(self) -> int:
        assert self.start is not None
        return int(self.start["status"])

    def header(self, name: bytes) -> bytes | None:
        assert self.start is not None
        return dict(self.start["headers"]).get(name)

    async def body(self, timeout: float = 10) -> bytes:
        message = await self.comm.receive_output(timeout)
        return bytes(message.get("body", b""))

    async def events(self, count: int, timeout: float = 20) -> list[Frame]:
        """Read until ``count`` events (``event:`` frames) arrived in total."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.parser.events()) < count:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(
                    f"got {len(self.parser.events())} of {count} events: "
                    f"{[f.id for f in self.parser.events()]}"
                )
            message = await self.comm.receive_output(remaining)
            self.parser.feed(bytes(message.get("body", b"")))
        return self.parser.events()

    async def close(self) -> None:
        await self.comm.send_input({"type": "http.disconnect"})
        with contextlib.suppress(Exception):
            await self.comm.wait(5)


__all__ = ["SSEClient", "WebsocketCommunicator", "sse_app", "ws_app"]
