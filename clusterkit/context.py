"""The request context: who asked, for which tenant, and where in the cluster we run.

A frozen dataclass in a :class:`contextvars.ContextVar`: asyncio copies it into child
tasks, and a change made inside :func:`use` is undone when the block ends. Message
headers carry the request id, tenant and W3C trace context so an entity handler runs
with the context of the request that sent the message plus its own :class:`ClusterState`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")
_TENANT = re.compile(r"^[A-Za-z0-9._:@-]{1,128}$")


@dataclasses.dataclass(frozen=True, slots=True)
class ClusterState:
    """Where a handler runs: its shard, runner and entity."""

    shard_group: str
    shard_id: int
    runner_id: int
    entity_type: str
    entity_id: str
    is_leader: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class RequestContext:
    """What is known about the request (or message) being served."""

    request_id: str | None = None
    tenant_id: str | None = None
    ip_address: str | None = None
    user_agent: str | None = None
    session: str | None = None
    traceparent: str | None = None
    tracestate: str | None = None
    rate_limit: Any = None
    circuit: Any = None
    cluster: ClusterState | None = None

    def replace(self, **changes: Any) -> RequestContext:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)


EMPTY = RequestContext()
_current: ContextVar[RequestContext] = ContextVar("clusterkit_context", default=EMPTY)


def current() -> RequestContext:
    """The context of the code running now (an empty one outside any request)."""
    return _current.get()


@contextlib.contextmanager
def use(ctx: RequestContext) -> Iterator[RequestContext]:
    """Run a block with ``ctx`` as the current context."""
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


def update(**changes: Any) -> RequestContext:
    """Change fields of the current context for the rest of this task or thread."""
    ctx = _current.get().replace(**changes)
    _current.set(ctx)
    return ctx


def valid_request_id(value: object) -> str | None:
    """``value`` if it is an acceptable request id (short, printable, no spaces)."""
    if isinstance(value, str) and _REQUEST_ID.match(value):
        return value
    return None


def valid_tenant(value: object) -> str | None:
    """``value`` if it is an acceptable tenant id."""
    if isinstance(value, str) and _TENANT.match(value):
        return value
    return None


def valid_traceparent(value: object) -> str | None:
    """``value`` if it is a well-formed W3C ``traceparent`` with non-zero ids."""
    if not isinstance(value, str):
        return None
    match = _TRACEPARENT.match(value.strip().lower())
    if not match or set(match.group(1)) == {"0"} or set(match.group(2)) == {"0"}:
        return None
    return match.group(0)


def new_traceparent(parent: str | None = None) -> str:
    """A child span of ``parent`` (same trace id, new span id), or a new trace."""
    trace_id = parent.split("-")[1] if parent else os.urandom(16).hex()
    flags = parent.split("-")[3] if parent else "01"
    return f"00-{trace_id}-{os.urandom(8).hex()}-{flags}"


def _no_span() -> str | None:
    return None


# Replaced by :mod:`clusterkit.tracing` when OpenTelemetry is installed: the traceparent of
# the current span, so that a message's handler span is the child of the span sending it.
outgoing_traceparent: Callable[[], str | None] = _no_span


def to_headers(ctx: RequestContext | None = None) -> dict[str, str]:
    """The message headers that carry ``ctx`` (the current context by default)."""
    ctx = current() if ctx is None else ctx
    headers: dict[str, str] = {}
    if ctx.request_id:
        headers["request_id"] = ctx.request_id
    if ctx.tenant_id:
        headers["tenant_id"] = ctx.tenant_id
    headers["traceparent"] = outgoing_traceparent() or new_traceparent(ctx.traceparent)
    if ctx.tracestate:
        headers["tracestate"] = ctx.tracestate
    return headers


def from_headers(headers: Mapping[str, object], cluster: ClusterState | None) -> RequestContext:
    """The context a handler runs with; invalid header values are dropped, not trusted."""
    tracestate = headers.get("tracestate")
    return RequestContext(
        request_id=valid_request_id(headers.get("request_id")),
        tenant_id=valid_tenant(headers.get("tenant_id")),
        traceparent=valid_traceparent(headers.get("traceparent")),
        tracestate=tracestate if isinstance(tracestate, str) and len(tracestate) < 512 else None,
        cluster=cluster,
    )
