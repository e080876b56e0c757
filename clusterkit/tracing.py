"""OpenTelemetry spans for sends, handlers, jobs and workflow activities — free without it.

With ``opentelemetry-api`` installed (the ``otel`` extra) and ``CLUSTERKIT["TRACING"]``
on (the default), :func:`span` opens a span on the ``clusterkit`` tracer. Its parent is
the current OpenTelemetry span, or else the W3C ``traceparent`` of the request context
(what :class:`~clusterkit.middleware.RequestContextMiddleware` read from the request, or a
message's headers on a runner). While a recording span is current, messages sent carry
*its* ``traceparent``, so the handler's span on another runner is its child: one trace
from the web request through entities, jobs and workflow activities.

Without OpenTelemetry, until a ``TracerProvider`` is set, or with ``TRACING`` off,
:func:`span` returns a shared no-op context manager and nothing else happens. Configure a
``TracerProvider`` and an exporter as OpenTelemetry documents; clusterkit only creates spans.

    from clusterkit import tracing

    with tracing.span("checkout.charge", {"order.id": order_id}):
        ...
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any

from django.core.signals import setting_changed

from . import context
from .conf import cluster_settings

try:
    from opentelemetry import trace as _trace
    from opentelemetry.trace import NoOpTracerProvider, ProxyTracerProvider, SpanKind
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # the optional extra is not installed
    _trace = None  # type: ignore[assignment]

_NOOP: contextlib.nullcontext[None] = contextlib.nullcontext()
_enabled: list[bool | None] = [None]  # CLUSTERKIT["TRACING"], read once
_UNKNOWN = object()
_PROVIDER_FROM_ENV = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ
_NOT_CONFIGURED: tuple[type, ...] = (
    (ProxyTracerProvider, NoOpTracerProvider) if _trace is not None else ()
)
_propagator: Any = TraceContextTextMapPropagator() if _trace is not None else None
KINDS: dict[str, Any] = (
    {
        "internal": SpanKind.INTERNAL, "producer": SpanKind.PRODUCER,
        "consumer": SpanKind.CONSUMER, "server": SpanKind.SERVER, "client": SpanKind.CLIENT,
    }
    if _trace is not None else {}
)  # fmt: skip


def available() -> bool:
    """True when OpenTelemetry is importable."""
    return _trace is not None


def active() -> bool:
    """True when spans are made: OpenTelemetry installed and configured, ``TRACING`` on.

    Until a ``TracerProvider`` is set, OpenTelemetry's API only hands out spans that
    record nothing; clusterkit then makes none (they would cost microseconds a message).
    """
    if _trace is None:
        return False
    enabled = _enabled[0]
    if enabled is None:
        enabled = _enabled[0] = bool(cluster_settings.TRACING)
    if not enabled:
        return False
    # The provider set by set_tracer_provider (read without the API's environment lookup).
    provider = getattr(_trace, "_TRACER_PROVIDER", _UNKNOWN)
    if provider is _UNKNOWN or (provider is None and _PROVIDER_FROM_ENV):
        provider = _trace.get_tracer_provider()
    return provider is not None and not isinstance(provider, _NOT_CONFIGURED)


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting == "CLUSTERKIT":
        _enabled[0] = None


setting_changed.connect(_reload)


def span(
    name: str,
    attributes: Mapping[str, Any] | None = None,
    *,
    parent: str | None = None,
    kind: str = "internal",
) -> contextlib.AbstractContextManager[Any]:
    """A span named ``name`` around a block (a no-op without OpenTelemetry).

    ``parent`` is a W3C ``traceparent`` to continue (default: the current span, or the
    request context's ``traceparent``). The block gets the OpenTelemetry span (or None).
    """
    if not active():
        return _NOOP
    return _span(name, attributes, parent, kind)


@contextlib.contextmanager
def _span(
    name: str, attributes: Mapping[str, Any] | None, parent: str | None, kind: str
) -> Iterator[Any]:
    parent_ctx = None
    if parent is None and not _trace.get_current_span().get_span_context().is_valid:
        parent = context.current().traceparent
    if parent is not None:
        carrier = {"traceparent": parent}
        state = context.current().tracestate
        if state:
            carrier["tracestate"] = state
        parent_ctx = _propagator.extract(carrier)
    tracer = _trace.get_tracer("clusterkit")
    with tracer.start_as_current_span(
        name, context=parent_ctx, kind=KINDS.get(kind, KINDS["internal"]),
        attributes=dict(attributes or {}),
    ) as current:
        own = _span_traceparent()
        if own is None:
            yield current
            return
        with context.use(context.current().replace(traceparent=own)):
            yield current


def _span_traceparent() -> str | None:
    """The ``traceparent`` of the current recording span, if there is one."""
    current = _trace.get_current_span()
    if not current.is_recording():
        return None
    sc = current.get_span_context()
    return f"00-{sc.trace_id:032x}-{sc.span_id:016x}-{int(sc.trace_flags):02x}"


def outgoing_traceparent() -> str | None:
    """What a message sent now should carry: the current span's ``traceparent``, if any."""
    if not active():
        return None
    return _span_traceparent()


def message_span(
    action: str, entity_type: str, rpc: str, entity_id: str, parent: str | None = None
) -> contextlib.AbstractContextManager[Any]:
    """The span of sending (``"send"``) or handling (``"handle"``) one message."""
    if not active():
        return _NOOP
    attributes: dict[str, Any] = {
        "messaging.system": "clusterkit", "messaging.destination.name": entity_type,
        "messaging.operation.type": "send" if action == "send" else "process",
        "clusterkit.entity_type": entity_type, "clusterkit.entity_id": entity_id,
        "clusterkit.rpc": rpc,
    }  # fmt: skip
    cluster = context.current().cluster
    if cluster is not None:
        attributes["clusterkit.runner_id"] = cluster.runner_id
        attributes["clusterkit.shard"] = f"{cluster.shard_group}:{cluster.shard_id}"
    kind = "producer" if action == "send" else "consumer"
    return _span(f"{action} {entity_type}.{rpc}", attributes, parent, kind)


if _trace is not None:
    context.outgoing_traceparent = outgoing_traceparent
