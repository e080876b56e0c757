"""The SSE and WebSocket endpoints (Channels consumers).

Neither holds a database connection while it streams: every query (tenant, hook,
replay, gap fill) is one ``database_sync_to_async`` call that returns its connection.
Neither has a channel-layer channel of its own either: the process's hub holds one
and hands events over in memory (see :mod:`streaming.fanout`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from typing import Any
from urllib.parse import parse_qs

from channels.exceptions import StopConsumer
from channels.generic.http import AsyncHttpConsumer
from channels.generic.websocket import AsyncWebsocketConsumer

from .auth import aresolve_tenant, authorize
from .conf import streaming_settings
from .events import Event, Reset, sse_frame, ws_frame
from .fanout import Item, Subscription
from .names import valid_channel

logger = logging.getLogger("streaming")
_SEQ = re.compile(r"^[0-9]{1,18}$")
NO_LAYER = "streaming.no-layer"  # an alias with no layer: no per-connection layer channel


class Refused(Exception):
    """A request that cannot be served: HTTP status (or WebSocket error code) and reason."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def parse_seq(value: object, what: str) -> int | None:
    """A resume point: ``None``, or a non-negative integer; else :class:`Refused` (400)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise Refused(400, "bad-request", f"{what} must be a sequence number")
    if isinstance(value, int):
        if 0 <= value < 10**18:
            return value
        raise Refused(400, "bad-request", f"{what} must be a sequence number")
    if isinstance(value, str) and _SEQ.match(value.strip()):
        return int(value.strip())
    raise Refused(400, "bad-request", f"{what} must be a sequence number, not {value!r:.40}")


async def open_subscription(
    scope: dict[str, Any], channel: object, last_seen: int | None
) -> Subscription:
    """Check the channel name and the hook, then subscribe; :class:`Refused` when not allowed."""
    name = valid_channel(channel)
    if name is None:
        raise Refused(400, "bad-channel", "invalid channel name")
    tenant = await aresolve_tenant(scope)
    if not await authorize(scope, tenant, name):
        raise Refused(403, "forbidden", f"not allowed to read {name!r}")
    sub = Subscription(tenant, name, transport="websocket" if scope["type"] == "websocket"
                       else "sse")
    await sub.start(last_seen)
    return sub


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers") or []:
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


class EventStreamConsumer(AsyncHttpConsumer):
    """``GET …/<channel>/``: a ``text/event-stream`` of the channel, resumable.

    The resume point is the ``Last-Event-ID`` header (browsers send it when they
    reconnect) or the ``lastEventId`` query parameter.
    """

    channel_layer_alias = NO_LAYER

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sub: Subscription | None = None
        self.task: asyncio.Task[None] | None = None

    async def http_request(self, message: dict[str, Any]) -> None:
        if message.get("more_body"):
            return  # the body is ignored
        try:
            if self.scope.get("method", "GET") not in ("GET", "HEAD"):
                raise Refused(405, "method-not-allowed", "use GET")
            query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
            last = _header(self.scope, b"last-event-id")
            if last is None and query.get("lastEventId"):
                last = query["lastEventId"][-1]
            last_seen = parse_seq(last, "Last-Event-ID")
            channel = self.scope.get("url_route", {}).get("kwargs", {}).get("channel")
            self.sub = await open_subscription(self.scope, channel, last_seen)
        except Refused as refused:
            body = json.dumps({"error": refused.code, "message": refused.message}).encode()
            await self.send_response(
                refused.status, body,
                headers=[(b"content-type", b"application/json"), (b"cache-control", b"no-cache")],
            )
            raise StopConsumer() from None
        await self.send_headers(
            status=200,
            headers=[
                (b"content-type", b"text/event-stream; charset=utf-8"),
                (b"cache-control", b"no-cache"),
                (b"x-accel-buffering", b"no"),
            ],
        )
        retry = int(streaming_settings.RETRY_MS)
        await self.send_body(f"retry: {retry}\n\n".encode(), more_body=True)
        self.task = asyncio.ensure_future(self._pump(self.sub))

    async def _pump(self, sub: Subscription) -> None:
        interval = float(streaming_settings.HEARTBEAT_INTERVAL)
        try:
            while True:
                items = await sub.read(timeout=interval)
                if not items:
                    await self.send_body(b": heartbeat\n\n", more_body=True)
                    continue
                await self.send_body(
                    b"".join(sse_frame(i) if isinstance(i, Event) else i.sse() for i in items),
                    more_body=True,
                )
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.warning("SSE stream of %s failed; closing it", sub.key, exc_info=True)
            with contextlib.suppress(Exception):
                await self.send_body(b"", more_body=False)

    async def disconnect(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await self.task
        if self.sub is not None:
            await self.sub.stop()


class StreamSocketConsumer(AsyncWebsocketConsumer):
    """A WebSocket carrying several channels as JSON frames.

    Client → server: ``{"type": "subscribe", "channel": "c", "last_seq": 41}`` (``last_seq``
    optional: only new events), ``{"type": "unsubscribe", "channel": "c"}``,
    ``{"type": "ping"}``. Server → client: ``subscribed``, ``unsubscribed``, ``event``
    (``channel``, ``seq``, ``event``, ``data``), ``reset``, ``heartbeat``, ``pong`` and
    ``error`` (``code``, ``message``, ``channel`` when it concerns one).
    """

    channel_layer_alias = NO_LAYER

    async def connect(self) -> None:
        self.subs: dict[str, tuple[Subscription, asyncio.Task[None]]] = {}
        self.heartbeat: asyncio.Task[None] | None = None
        await self.accept()
        self.heartbeat = asyncio.ensure_future(self._beat())

    async def _beat(self) -> None:
        interval = float(streaming_settings.HEARTBEAT_INTERVAL)
        while True:
            await asyncio.sleep(interval)
            await self.send(text_data='{"type":"heartbeat"}')

    async def _error(self, code: str, message: str, channel: str | None = None) -> None:
        frame: dict[str, Any] = {"type": "error", "code": code, "message": message}
        if channel is not None:
            frame["channel"] = channel
        await self.send(text_data=json.dumps(frame))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            frame = json.loads(text_data) if text_data is not None else None
        except ValueError:
            frame = None
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            await self._error("bad-request", "frames are JSON objects with a 'type'")
            return
        kind = frame["type"]
        channel = frame.get("channel")
        label = channel if isinstance(channel, str) and len(channel) <= 200 else None
        try:
            if kind == "subscribe":
                await self._subscribe(channel, parse_seq(frame.get("last_seq"), "last_seq"))
            elif kind == "unsubscribe":
                await self._unsubscribe(channel)
            elif kind == "ping":
                await self.send(text_data='{"type":"pong"}')
            else:
                raise Refused(400, "bad-request", f"unknown frame type {kind!r:.40}")
        except Refused as refused:
            await self._error(refused.code, refused.message, label)

    async def _subscribe(self, channel: object, last_seen: int | None) -> None:
        if isinstance(channel, str) and channel in self.subs:
            raise Refused(400, "already-subscribed", "already subscribed")
        if len(self.subs) >= int(streaming_settings.MAX_SUBSCRIPTIONS):
            raise Refused(400, "too-many", "too many subscriptions on one socket")
        sub = await open_subscription(self.scope, channel, last_seen)
        await self.send(text_data=json.dumps(
            {"type": "subscribed", "channel": sub.channel, "seq": sub.next_seq - 1}
        ))
        self.subs[sub.channel] = (sub, asyncio.ensure_future(self._pump(sub)))

    async def _unsubscribe(self, channel: object) -> None:
        if not isinstance(channel, str) or channel not in self.subs:
            raise Refused(400, "not-subscribed", "not subscribed")
        await self._drop(channel)
        await self.send(text_data=json.dumps({"type": "unsubscribed", "channel": channel}))

    async def _drop(self, channel: str) -> None:
        sub, task = self.subs.pop(channel)
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        await sub.stop()

    async def _pump(self, sub: Subscription) -> None:
        try:
            while True:
                items: list[Item] = await sub.read()
                for item in items:
                    if isinstance(item, Reset):
                        await self.send(text_data=json.dumps(item.ws()))
                    else:
                        await self.send(text_data=ws_frame(item))
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.warning("WebSocket stream of %s failed", sub.key, exc_info=True)
            if self.subs.get(sub.channel, (None,))[0] is sub:  # so it can be subscribed again
                del self.subs[sub.channel]
            with contextlib.suppress(Exception):
                await sub.stop()
            with contextlib.suppress(Exception):
                await self._error("internal", "the stream failed; subscribe again", sub.channel)

    async def disconnect(self, code: int) -> None:
        if self.heartbeat is not None:
            self.heartbeat.cancel()
        for channel in list(getattr(self, "subs", {})):
            await self._drop(channel)
