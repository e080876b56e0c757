"""clusterkit's streaming app: ordered, durable, tenant-scoped server-sent events.

``publish(channel, event, data)`` from a view, a job or an entity; clients read the
channel over SSE or a WebSocket and resume from the last id they saw.
"""

from __future__ import annotations

from typing import Any


def publish(
    channel: str, event: str, data: Any = None, *, tenant: str | None = None, wait: bool = False
) -> int | None:
    """Publish an event (see :func:`streaming.api.publish`)."""
    from .api import publish as _publish

    return _publish(channel, event, data, tenant=tenant, wait=wait)


async def apublish(
    channel: str, event: str, data: Any = None, *, tenant: str | None = None, wait: bool = False
) -> int | None:
    """Async :func:`publish`."""
    from .api import apublish as _apublish

    return await _apublish(channel, event, data, tenant=tenant, wait=wait)


__all__ = ["apublish", "publish"]
