"""``publish`` / ``apublish``: append an event to a tenant's channel, from anywhere."""

from __future__ import annotations

import uuid
from typing import Any

from .names import check_channel, check_event, check_tenant, default_tenant, entity_id


def _target(channel: str, event: str, tenant: str | None) -> tuple[Any, str]:
    from .entities import Stream

    tenant = check_tenant(default_tenant() if tenant is None else tenant)
    name = entity_id(tenant, check_channel(channel))
    check_event(event)
    return Stream.client(name), uuid.uuid4().hex


def publish(
    channel: str, event: str, data: Any = None, *, tenant: str | None = None, wait: bool = False
) -> int | None:
    """Publish ``event`` with JSON ``data`` on ``channel`` of ``tenant``.

    ``tenant`` defaults to the current request context's tenant, else
    ``STREAMING["DEFAULT_TENANT"]``. The event is stored as a persisted message in the
    caller's transaction (inside ``atomic()`` it is published only if that commits).
    Returns the event's sequence number with ``wait=True`` (not inside ``atomic()``),
    else the id of the stored message.
    """
    client, key = _target(channel, event, tenant)
    if wait:
        return int(client.append.call(event=event, data=data, key=key))
    return client.append.send(event=event, data=data, key=key)  # type: ignore[no-any-return]


async def apublish(
    channel: str, event: str, data: Any = None, *, tenant: str | None = None, wait: bool = False
) -> int | None:
    """Async :func:`publish`."""
    client, key = _target(channel, event, tenant)
    if wait:
        return int(await client.append.acall(event=event, data=data, key=key))
    return await client.append.asend(event=event, data=data, key=key)  # type: ignore[no-any-return]


__all__ = ["apublish", "publish"]
