"""Validation of tenant, channel and event names, and channel-layer group names."""

from __future__ import annotations

import hashlib
import re

from clusterkit import context
from clusterkit.errors import InvalidPayload

from .conf import streaming_settings

_CHANNEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/-]*$")
_EVENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
_GROUP_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]")
RESERVED_EVENTS = frozenset({"reset", "heartbeat", "error", "subscribed", "unsubscribed"})


def valid_channel(value: object) -> str | None:
    """``value`` if it is an acceptable channel name (letters, digits, ``._:@/-``)."""
    if (
        isinstance(value, str)
        and 0 < len(value) <= streaming_settings.MAX_CHANNEL_LENGTH
        and _CHANNEL.match(value)
    ):
        return value
    return None


def check_channel(value: object) -> str:
    """The channel name, or :class:`~clusterkit.errors.InvalidPayload`."""
    channel = valid_channel(value)
    if channel is None:
        raise InvalidPayload(
            f"invalid channel name {value!r}: 1..{streaming_settings.MAX_CHANNEL_LENGTH} "
            "letters, digits or ._:@/- starting with a letter or digit"
        )
    return channel


def check_tenant(value: object) -> str:
    """The tenant id, or :class:`~clusterkit.errors.InvalidPayload`."""
    tenant = context.valid_tenant(value)
    if tenant is None:
        raise InvalidPayload(f"invalid tenant {value!r}")
    return tenant


def check_event(value: object) -> str:
    """The event name (no newlines, not reserved), or ``InvalidPayload``."""
    if (
        not isinstance(value, str)
        or not 0 < len(value) <= streaming_settings.MAX_EVENT_LENGTH
        or not _EVENT.match(value)
    ):
        raise InvalidPayload(
            f"invalid event name {value!r}: 1..{streaming_settings.MAX_EVENT_LENGTH} "
            "letters, digits or ._:- starting with a letter or digit"
        )
    if value in RESERVED_EVENTS:
        raise InvalidPayload(f"event name {value!r} is reserved")
    return value


def default_tenant() -> str:
    """The tenant of the current request context, else ``STREAMING["DEFAULT_TENANT"]``."""
    return context.current().tenant_id or str(streaming_settings.DEFAULT_TENANT)


def entity_id(tenant: str, channel: str) -> str:
    """The id of the stream entity of ``(tenant, channel)``: ``"tenant/channel"``.

    Tenants never contain ``/``, so the first ``/`` separates the two parts.
    """
    return f"{tenant}/{channel}"


def split_entity_id(value: str) -> tuple[str, str]:
    """``(tenant, channel)`` of a stream entity id."""
    tenant, _, channel = value.partition("/")
    return tenant, channel


def group_name(tenant: str, channel: str) -> str:
    """The channel-layer group of a stream: only ``[a-zA-Z0-9_.-]``, under 100 characters.

    Names that would need changing, or would be too long, become a hash, so two
    different streams never share a group.
    """
    raw = f"stream.{len(tenant)}.{tenant}.{channel}"  # the length makes the split unambiguous
    if len(raw) < 90 and not _GROUP_UNSAFE.search(raw):
        return raw
    digest = hashlib.sha256(f"{tenant}\0{channel}".encode()).hexdigest()[:40]
    prefix = _GROUP_UNSAFE.sub("_", f"{tenant}.{channel}")[:40]
    return f"streamh.{prefix}.{digest}"
