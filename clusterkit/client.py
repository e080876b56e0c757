"""Calling entities: ``Counter.client("user-42").increment.call(by=1)`` and friends.

Persisted calls are stored in the caller's transaction and answered from storage;
volatile calls go straight to the owning runner. Every call has a sync form for views
and commands and an async form; errors are the typed ones of :mod:`clusterkit.errors`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import msgspec
from asgiref.sync import sync_to_async
from django.db import connections

from . import context, frames, loop, metrics, snowflake, tracing
from .conf import cluster_settings
from .errors import (
    CallInTransaction,
    ClusterError,
    InvalidPayload,
    RunnerUnavailable,
    Timeout,
    error_from_reply,
)
from .models import ReplyStatus
from .replies import hub
from .routing import router
from .rpc import RpcSpec
from .sharding import shard_for
from .storage import OutgoingMessage, Storage, message_key
from .transport import client as transport

if TYPE_CHECKING:
    from .entity import Entity

_json = msgspec.json.Encoder()


@dataclasses.dataclass(frozen=True)
class CallOptions:
    """Options of one call: dedup key, scheduled delivery, timeout, fire and forget."""

    primary_key: str | None = None
    deliver_at: dt.datetime | dt.timedelta | None = None
    timeout: float | None = None
    discard: bool = False
    priority: int = 0

    def deliver_at_ms(self) -> int | None:
        """``deliver_at`` as Unix milliseconds."""
        when = self.deliver_at
        if when is None:
            return None
        if isinstance(when, dt.timedelta):
            return int(time.time() * 1000 + when.total_seconds() * 1000)
        if when.tzinfo is None:
            raise InvalidPayload("deliver_at must be an aware datetime")
        return int(when.timestamp() * 1000)

    def wait_seconds(self) -> float:
        return float(cluster_settings.CALL_TIMEOUT if self.timeout is None else self.timeout)


def _validate_id(entity_id: object) -> str:
    if not isinstance(entity_id, str) or not entity_id.strip() or len(entity_id) > 255:
        raise InvalidPayload("an entity id is a non-empty string of at most 255 characters")
    return entity_id


def _embedded() -> None:
    if cluster_settings.EMBEDDED_RUNNER:
        from .embedded import ensure_started

        ensure_started()


class EntityClient:
    """The rpcs of one entity, as attributes: ``client.increment.call(by=1)``."""

    def __init__(self, entity_cls: type[Entity], entity_id: str) -> None:
        self.entity_cls = entity_cls
        self.entity_id = _validate_id(entity_id)
        self.group = entity_cls.group_for(entity_id)
        self.shard = shard_for(entity_id)

    def __getattr__(self, name: str) -> RpcCaller:
        if name.startswith("__"):
            raise AttributeError(name)
        return RpcCaller(self, self.entity_cls.spec(name), CallOptions())

    def __repr__(self) -> str:
        return f"<{self.entity_cls.entity_type} {self.entity_id!r}>"


class RpcCaller:
    """One rpc of one entity, with call options; call it sync, async, or fire and forget."""

    def __init__(self, target: EntityClient, spec: RpcSpec, options: CallOptions) -> None:
        self.target, self.spec, self.opts = target, spec, options

    def options(self, **changes: Any) -> RpcCaller:
        """The same rpc with other :class:`CallOptions` (``primary_key``, ``deliver_at`` …)."""
        if not self.spec.persisted and (changes.get("primary_key") or changes.get("deliver_at")):
            raise InvalidPayload(
                f"{self.spec.name} is volatile: primary_key and deliver_at need persisted=True"
            )
        return RpcCaller(self.target, self.spec, dataclasses.replace(self.opts, **changes))

    # -- persisted -------------------------------------------------------------------

    def _message(self, payload: bytes, wait: bool) -> OutgoingMessage:
        headers = context.to_headers()
        if wait:
            headers["wait"] = "1"
        key = self.opts.primary_key
        t = self.target
        return OutgoingMessage(
            id=snowflake.next_id(),
            message_key=(
                message_key(t.entity_cls.entity_type, t.entity_id, self.spec.name, key)
                if key is not None
                else None
            ),
            shard_group=t.group,
            shard_id=t.shard,
            entity_type=t.entity_cls.entity_type,
            entity_id=t.entity_id,
            rpc=self.spec.name,
            payload=payload.decode(),
            headers=_json.encode(headers).decode(),
            priority=self.opts.priority,
            deliver_at=self.opts.deliver_at_ms(),
        )

    def _store(self, payload: bytes, wait: bool) -> tuple[int, Any]:
        """Save the message; when waiting, the reply future is registered before commit."""
        t = self.target
        with tracing.message_span("send", t.entity_cls.entity_type, self.spec.name, t.entity_id):
            msg = self._message(payload, wait)
            future = hub.watch(msg.id) if wait else None
            try:
                stored = Storage().save([msg])[0]
            except BaseException:
                if future is not None:
                    hub.forget(msg.id, future)
                raise
        metrics.for_entity(t.entity_cls.entity_type).sent_persisted.inc()
        if future is not None and stored != msg.id:  # a duplicate: wait for the original
            hub.forget(msg.id, future)
            future = hub.watch(stored)
            for request_id, reply in Storage().replies([stored]).items():
                hub.resolve(request_id, reply)
        return stored, future

    def _decode(self, status: int, payload: str | bytes) -> Any:
        if status == ReplyStatus.SUCCESS:
            return self.spec.decode_reply(payload)
        error = msgspec.json.decode(payload)
        raise error_from_reply(
            str(error.get("type", "Error")),
            str(error.get("message", "")),
            str(error.get("traceback", "")),
        )

    def _check_not_atomic(self) -> None:
        if connections["default"].in_atomic_block:
            raise CallInTransaction(
                f"{self.spec.name}.call() inside atomic() would wait for a message that is not "
                "committed yet; use send() inside the transaction"
            )

    # -- public sync API -------------------------------------------------------------

    def call(self, *args: Any, **kwargs: Any) -> Any:
        """Call and wait for the reply (sync)."""
        payload = self.spec.encode_args(args, kwargs)
        if self.opts.discard:
            self._send(payload)
            return None
        if not self.spec.persisted:
            return self._volatile_sync(payload)
        self._check_not_atomic()
        request_id, future = self._store(payload, wait=True)
        _embedded()
        try:
            status, raw = future.result(self.opts.wait_seconds())
        except TimeoutError:
            hub.forget(request_id, future)
            raise Timeout(f"no reply to {self.spec.name} #{request_id} yet") from None
        return self._decode(status, raw)

    def send(self, *args: Any, **kwargs: Any) -> int | None:
        """Fire and forget; returns the stored message id of a persisted call."""
        return self._send(self.spec.encode_args(args, kwargs))

    def _send(self, payload: bytes) -> int | None:
        if self.spec.persisted:
            request_id, _ = self._store(payload, wait=False)
            _embedded()
            return request_id
        self._volatile_sync(payload, discard=True)
        return None

    # -- public async API ------------------------------------------------------------

    async def acall(self, *args: Any, **kwargs: Any) -> Any:
        """Call and wait for the reply (async)."""
        payload = self.spec.encode_args(args, kwargs)
        if self.opts.discard:
            await self._asend(payload)
            return None
        if not self.spec.persisted:
            return await self._volatile_async(payload)
        await sync_to_async(self._check_not_atomic)()
        request_id, future = await sync_to_async(self._store)(payload, True)
        _embedded()
        try:
            status, raw = await asyncio.wait_for(
                asyncio.wrap_future(future), self.opts.wait_seconds()
            )
        except TimeoutError:
            hub.forget(request_id, future)
            raise Timeout(f"no reply to {self.spec.name} #{request_id} yet") from None
        return self._decode(status, raw)

    def __call__(self, *args: Any, **kwargs: Any) -> Coroutine[Any, Any, Any]:
        """``await client.rpc(...)`` is :meth:`acall`."""
        return self.acall(*args, **kwargs)

    async def asend(self, *args: Any, **kwargs: Any) -> int | None:
        """Fire and forget (async)."""
        return await self._asend(self.spec.encode_args(args, kwargs))

    async def _asend(self, payload: bytes) -> int | None:
        if self.spec.persisted:
            request_id, _ = await sync_to_async(self._store)(payload, False)
            _embedded()
            return request_id
        await self._volatile_async(payload, discard=True)
        return None

    # -- volatile --------------------------------------------------------------------

    def _frame(self, payload: bytes, discard: bool) -> frames.Call:
        t = self.target
        metrics.for_entity(t.entity_cls.entity_type).sent_volatile.inc()
        return frames.Call(
            corr=0,
            entity_type=t.entity_cls.entity_type,
            entity_id=t.entity_id,
            rpc=self.spec.name,
            payload=msgspec.Raw(payload),
            headers=context.to_headers(),
            discard=discard,
        )

    def _volatile_sync(self, payload: bytes, discard: bool = False) -> Any:
        _embedded()
        deadline = time.monotonic() + self.opts.wait_seconds()
        with self._span():
            call = self._frame(payload, discard)
            result = _deliver_sync(call, self.target.group, self.target.shard, deadline)
        return None if discard else self._result(result)

    async def _volatile_async(self, payload: bytes, discard: bool = False) -> Any:
        _embedded()
        deadline = time.monotonic() + self.opts.wait_seconds()
        with self._span():
            call = self._frame(payload, discard)
            result = await loop.run(_deliver(call, self.target.group, self.target.shard, deadline))
        return None if discard else self._result(result)

    def _span(self) -> Any:
        t = self.target
        return tracing.message_span("send", t.entity_cls.entity_type, self.spec.name, t.entity_id)

    def _result(self, result: frames.Result | None) -> Any:
        assert result is not None
        if result.ok:
            return self.spec.decode_reply(result.payload)
        raise error_from_reply(result.error_type, result.error_message)


def _final(result: frames.Result | None) -> frames.Result | None:
    """``result`` when it settles the call; ``RunnerUnavailable`` when it says "not here"."""
    if result is None or result.ok or result.error_type != "RunnerUnavailable":
        return result
    raise RunnerUnavailable(result.error_message)


async def _deliver(
    call: frames.Call, group: str, shard: int, deadline: float
) -> frames.Result | None:
    """Send a volatile call to the shard's owner, retrying while it moves or restarts."""
    from .runner import local_runners

    last: ClusterError = RunnerUnavailable(f"no runner holds the shard of {call.entity_id!r}")
    while True:
        cached = router.cached_owner(group, shard)
        if cached is False:
            owner = await asyncio.get_running_loop().run_in_executor(
                loop.db_pool, router.owner, group, shard
            )
        else:
            owner = cached
        if owner is not None:
            try:
                local = local_runners.get(owner.runner_id)
                if local is not None:
                    return _final(await local.call_from(call))
                return _final(await transport.call(owner.address, call))
            except RunnerUnavailable as exc:
                last = exc
        router.invalidate(group)
        if time.monotonic() + 0.1 > deadline:
            raise last
        await asyncio.sleep(0.1)


def _deliver_sync(
    call: frames.Call, group: str, shard: int, deadline: float
) -> frames.Result | None:
    """:func:`_deliver` for sync callers: their own blocking socket, no loop hop."""
    from .runner import local_runners
    from .transport import call_blocking

    last: ClusterError = RunnerUnavailable(f"no runner holds the shard of {call.entity_id!r}")
    while True:
        owner = router.owner(group, shard)
        if owner is not None:
            try:
                local = local_runners.get(owner.runner_id)
                if local is None:
                    remaining = max(0.05, deadline - time.monotonic())
                    return _final(call_blocking(owner.address, call, remaining))
                future = loop.submit(local.call_from(call))
                try:
                    return _final(future.result(max(0.0, deadline - time.monotonic()) + 1.0))
                except TimeoutError:
                    raise Timeout(f"no reply to {call.rpc} in time") from None
            except RunnerUnavailable as exc:
                last = exc
        router.invalidate(group)
        if time.monotonic() + 0.1 > deadline:
            raise last
        time.sleep(0.1)


def send_many(
    entity_cls: type[Entity], calls: list[tuple[str, str, dict[str, Any]]], *, priority: int = 0
) -> list[int]:
    """Store many persisted calls in one transaction; returns their message ids."""
    with tracing.span("send_many " + entity_cls.entity_type, {"clusterkit.calls": len(calls)},
                      kind="producer"):
        ids = _send_many(entity_cls, calls, priority)
    metrics.for_entity(entity_cls.entity_type).sent_persisted.inc(len(ids))
    return ids


def _send_many(
    entity_cls: type[Entity], calls: list[tuple[str, str, dict[str, Any]]], priority: int
) -> list[int]:
    headers = _json.encode(context.to_headers()).decode()
    messages = []
    for entity_id, rpc_name, kwargs in calls:
        spec = entity_cls.spec(rpc_name)
        if not spec.persisted:
            raise InvalidPayload(f"{rpc_name} is volatile; send_many stores persisted calls only")
        _validate_id(entity_id)
        messages.append(
            OutgoingMessage(
                id=snowflake.next_id(),
                message_key=None,
                shard_group=entity_cls.group_for(entity_id),
                shard_id=shard_for(entity_id),
                entity_type=entity_cls.entity_type,
                entity_id=entity_id,
                rpc=rpc_name,
                payload=spec.encode_args((), kwargs).decode(),
                headers=headers,
                priority=priority,
            )
        )
    ids = Storage().save(messages)
    _embedded()
    return ids
