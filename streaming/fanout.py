"""Fan-out: one hub per event loop of a process, one channel-layer channel per hub.

Every process that has subscribers runs a :class:`Hub` on its event loop. The hub joins
the layer group of a stream once, whatever the number of local subscribers, and
hands each event to every local :class:`Subscription` in memory: a group send costs
one layer message per *process*, not per subscriber. Events appended by a stream
entity in this very process are handed to the local hubs directly (and the hubs ignore
their layer copy).

Nothing here trusts the layer to be lossless. A subscription notices a missing
sequence number — the layer dropped a message, or its own bounded buffer dropped its
oldest events because the client is slow — and fetches the missing events from the
log before it goes on; a hub notices a dropped *last* event with one ``head`` query
per stream once the stream goes quiet (``TAIL_CHECK_DELAY``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import threading
import time
import uuid
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer

from clusterkit import metrics

from . import log
from .conf import streaming_settings
from .events import Event, Reset
from .names import group_name

logger = logging.getLogger("streaming")

#: Identifies this process in layer messages, so local hubs skip their own echoes.
ORIGIN = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
_hubs: dict[asyncio.AbstractEventLoop, Hub] = {}
_hubs_lock = threading.Lock()


def layer() -> Any:
    """The channel layer used for fan-out (``None`` when none is configured)."""
    return get_channel_layer(streaming_settings.CHANNEL_LAYER)


def uses_network_layer() -> bool:
    """True when the layer can reach other processes (not the in-memory layer)."""
    current = layer()
    return current is not None and not isinstance(current, InMemoryChannelLayer)


async def fan_out(events: list[Event]) -> None:
    """Deliver events appended to one stream, in order, to this process's hubs and, in one
    layer message, to the others."""
    for ev in events:
        deliver_local(ev)
    if not events or not uses_network_layer():
        return
    first = events[0]
    message: dict[str, object] = (
        first.to_message(ORIGIN) if len(events) == 1 else
        {"type": "streaming.events", "o": ORIGIN, "events": [e.to_message("") for e in events]}
    )
    try:
        await layer().group_send(group_name(first.tenant, first.channel), message)
    except Exception:  # the log has them: subscribers will fill the gap from there
        logger.warning("group_send of %s/%s#%d-%d failed", first.tenant, first.channel,
                       first.seq, events[-1].seq, exc_info=True)


def deliver_local(ev: Event) -> None:
    """Hand ``ev`` to every hub of this process that has subscribers of its stream."""
    with _hubs_lock:
        hubs = list(_hubs.values())
    for hub in hubs:
        if ev.key not in hub.streams:
            continue
        try:
            hub.loop.call_soon_threadsafe(hub.deliver, ev, True)
        except RuntimeError:  # that loop is closed
            with _hubs_lock:
                _hubs.pop(hub.loop, None)


def get_hub() -> Hub:
    """The hub of the running event loop (created on first use)."""
    loop = asyncio.get_running_loop()
    with _hubs_lock:
        hub = _hubs.get(loop)
        if hub is None:
            for old in [lp for lp in _hubs if lp.is_closed()]:
                del _hubs[old]
            hub = _hubs[loop] = Hub(loop)
        return hub


class _Stream:
    """What a hub knows about one stream it has subscribers of."""

    __slots__ = ("group", "last_activity", "last_seq", "subs", "timer")

    def __init__(self, group: str) -> None:
        self.group = group
        self.subs: set[Subscription] = set()
        self.last_seq = 0
        self.last_activity = 0.0
        self.timer: asyncio.TimerHandle | None = None


class Hub:
    """The subscribers of one event loop, and its one channel-layer channel."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.streams: dict[tuple[str, str], _Stream] = {}
        self.channel_name: str | None = None
        self._receiver: asyncio.Task[None] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._inflight: dict[tuple[str, str, int], asyncio.Future[list[Event]]] = {}
        self._lock = asyncio.Lock()
        self.stats = collections.Counter[str]()

    # -- membership ------------------------------------------------------------------

    async def subscribe(self, sub: Subscription) -> None:
        """Add ``sub``; the first subscriber of a stream joins its layer group."""
        async with self._lock:
            stream = self.streams.get(sub.key)
            if stream is None:
                stream = _Stream(group_name(*sub.key))
                self.streams[sub.key] = stream
                await self._join(stream.group)
            stream.subs.add(sub)

    async def unsubscribe(self, sub: Subscription) -> None:
        """Remove ``sub``; the last subscriber of a stream leaves its layer group."""
        async with self._lock:
            stream = self.streams.get(sub.key)
            if stream is None or sub not in stream.subs:
                return
            stream.subs.discard(sub)
            if stream.subs:
                return
            del self.streams[sub.key]
            if stream.timer is not None:
                stream.timer.cancel()
            if self.channel_name is not None:
                with contextlib.suppress(Exception):
                    await layer().group_discard(stream.group, self.channel_name)

    async def _join(self, group: str) -> None:
        if not uses_network_layer():
            return
        current = layer()
        if self.channel_name is None:
            self.channel_name = await current.new_channel("streaming.hub.")
            self._receiver = self.loop.create_task(self._receive())
            self._refresher = self.loop.create_task(self._refresh())
        await current.group_add(group, self.channel_name)

    async def _refresh(self) -> None:
        """Re-add this hub's groups now and then: layers expire group memberships."""
        while True:
            await asyncio.sleep(float(streaming_settings.GROUP_REFRESH))
            for stream in list(self.streams.values()):
                with contextlib.suppress(Exception):
                    await layer().group_add(stream.group, self.channel_name)

    async def _receive(self) -> None:
        current = layer()
        assert self.channel_name is not None
        pause = 0.05
        while True:
            try:
                message = await current.receive(self.channel_name)
            except asyncio.CancelledError:
                raise
            except TimeoutError:  # an idle blocking read gave up: read again at once
                continue
            except Exception:  # the layer is down: back off; subscribers fill gaps later
                logger.warning("streaming hub: layer receive failed; retrying in %.2f s",
                               pause, exc_info=True)
                await asyncio.sleep(pause)
                pause = min(2.0, pause * 2)
                continue
            pause = 0.05
            kind = message.get("type")
            if kind not in ("streaming.event", "streaming.events") or message.get("o") == ORIGIN:
                continue
            try:
                items = message["events"] if kind == "streaming.events" else [message]
                if not isinstance(items, list):
                    raise ValueError("events is not a list")
                events = [Event.from_message(item) for item in items]
            except (ValueError, KeyError, TypeError):
                logger.warning("streaming hub: malformed layer message dropped")
                continue
            for ev in events:
                self.deliver(ev, False)

    # -- delivery --------------------------------------------------------------------

    def deliver(self, ev: Event, local: bool) -> None:
        """Offer ``ev`` to the stream's subscribers (runs on the hub's loop)."""
        stream = self.streams.get(ev.key)
        if stream is None:
            return
        self.stats["local" if local else "layer"] += 1
        if ev.seq > stream.last_seq:
            stream.last_seq = ev.seq
        stream.last_activity = time.monotonic()
        for sub in stream.subs:
            sub.offer(ev)
        if stream.timer is None and uses_network_layer():
            delay = float(streaming_settings.TAIL_CHECK_DELAY)
            stream.timer = self.loop.call_later(delay, self._tail_due, ev.key)

    def _tail_due(self, key: tuple[str, str]) -> None:
        stream = self.streams.get(key)
        if stream is None:
            return
        delay = float(streaming_settings.TAIL_CHECK_DELAY)
        quiet = time.monotonic() - stream.last_activity
        if quiet < delay:
            stream.timer = self.loop.call_later(delay - quiet, self._tail_due, key)
            return
        stream.timer = None
        self.loop.create_task(self._tail_check(key, stream))

    async def _tail_check(self, key: tuple[str, str], stream: _Stream) -> None:
        """After a burst, make sure its last events were not dropped by the layer."""
        try:
            last = await database_sync_to_async(log.head)(*key)
        except Exception:
            logger.warning("streaming hub: tail check of %s failed", key, exc_info=True)
            return
        if last > stream.last_seq and self.streams.get(key) is stream:
            self.stats["tail_fill"] += 1
            filled = await self.fetch(key[0], key[1], stream.last_seq)
            for sub in stream.subs:
                metrics.stream_gap_filled(sub.transport, len(filled))
            for ev in filled:
                self.deliver(ev, False)

    async def fetch(self, tenant: str, channel: str, after: int) -> list[Event]:
        """Events after ``after`` from the log; concurrent identical requests share a query."""
        key = (tenant, channel, after)
        future = self._inflight.get(key)
        if future is None:
            batch = int(streaming_settings.REPLAY_BATCH)
            future = asyncio.ensure_future(
                database_sync_to_async(log.fetch)(tenant, channel, after, batch)
            )
            self._inflight[key] = future
            future.add_done_callback(lambda _: self._inflight.pop(key, None))
            self.stats["fetch"] += 1
        return await asyncio.shield(future)


Item = Event | Reset


class Subscription:
    """One subscriber of one stream: a bounded buffer and gap-free, in-order reads.

    ``next_seq`` is the next sequence number the subscriber must see. Events older than
    it are duplicates and skipped; a newer one means a gap, which is filled from the
    log first. When the missing events were pruned already, a :class:`Reset` tells
    the subscriber so and the stream goes on from the newest event.
    """

    def __init__(
        self, tenant: str, channel: str, *, buffer: int | None = None, hub: Hub | None = None,
        transport: str = "sse",
    ) -> None:
        self.tenant, self.channel = tenant, channel
        self.transport = transport  # "sse" or "websocket": the label of its metrics
        self.key = (tenant, channel)
        self.hub = hub or get_hub()
        size = int(streaming_settings.SUBSCRIBER_BUFFER if buffer is None else buffer)
        self.buffer: collections.deque[Event] = collections.deque(maxlen=max(1, size))
        self.next_seq = 1
        self.backlog_to = 0  # events up to this seq are to be read from the log
        self.dropped = 0  # events the sliding buffer dropped (refetched later)
        self.filled = 0  # events read from the log instead of the buffer
        self._wake = asyncio.Event()
        self._pending: list[Item] = []
        self._gap = False  # reading from the log because the buffer or the layer lost events
        self.started = False

    async def start(self, last_seen: int | None) -> None:
        """Subscribe, then position after ``last_seen`` (``None``: only new events).

        Subscribing first and reading the head second means no event falls between the
        two: anything appended meanwhile arrives through the buffer or the log.
        """
        await self.hub.subscribe(self)
        self.started = True
        metrics.stream_subscribed(self.transport)
        try:
            oldest, last = await database_sync_to_async(log.bounds)(self.tenant, self.channel)
        except BaseException:
            await self.stop()
            raise
        if last_seen is None or last_seen == last:
            self.next_seq = last + 1
        elif last_seen > last:  # from the future: forged, or a log that was wiped
            self._reset(last, "unknown-id")
        elif oldest and last_seen < oldest - 1:
            self._reset(last, "expired")
        else:
            self.next_seq = last_seen + 1
            self.backlog_to = last

    async def stop(self) -> None:
        """Leave the hub."""
        if self.started:
            self.started = False
            metrics.stream_unsubscribed(self.transport)
            await self.hub.unsubscribe(self)

    def offer(self, ev: Event) -> None:
        """Buffer ``ev``; a full buffer drops its oldest event (refetched when read)."""
        if len(self.buffer) == self.buffer.maxlen:
            self.dropped += 1
            metrics.stream_dropped(self.transport)
        self.buffer.append(ev)
        self._wake.set()

    def _reset(self, seq: int, reason: str) -> None:
        self._pending.append(Reset(self.channel, seq, reason))
        self.next_seq = seq + 1
        self.backlog_to = 0

    async def read(self, timeout: float | None = None) -> list[Item]:
        """The next events, in order and gap-free; ``[]`` when none came within ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            out, self._pending = self._pending, []
            if self.backlog_to >= self.next_seq:
                out.extend(await self._from_log())
                if out:
                    return out
                continue
            while self.buffer:
                ev = self.buffer.popleft()
                if ev.seq < self.next_seq:
                    continue
                if ev.seq > self.next_seq:  # a gap: the layer or our buffer dropped events
                    self.buffer.appendleft(ev)
                    self.backlog_to = ev.seq - 1
                    self._gap = True
                    break
                out.append(ev)
                self.next_seq += 1
            if out or self.backlog_to >= self.next_seq:
                if out:
                    return out
                continue
            self._wake.clear()
            if self.buffer:
                continue
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return []
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except TimeoutError:
                return []

    async def _from_log(self) -> list[Item]:
        events = await self.hub.fetch(self.tenant, self.channel, self.next_seq - 1)
        if not events or events[0].seq != self.next_seq:
            # Pruned meanwhile (or never there): say so and go on from the newest event.
            last = await database_sync_to_async(log.head)(self.tenant, self.channel)
            last = max(last, self.backlog_to, self.next_seq - 1)
            self._reset(last, "expired")
            return []
        out: list[Item] = []
        for ev in events:
            if ev.seq != self.next_seq:
                break
            out.append(ev)
            self.next_seq += 1
        self.filled += len(out)
        if self._gap:
            metrics.stream_gap_filled(self.transport, len(out))
            self._gap = self.backlog_to >= self.next_seq
        return out
