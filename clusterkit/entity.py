"""Entities: virtual actors addressed by (type, id), hosted by whichever runner owns the shard.

An instance is created on its first message, keeps its state in memory, handles one
message at a time by default (``concurrency``), and is passivated after
``max_idle_time`` without work. Subclasses are registered by name when defined, and
every installed app's ``entities.py`` is imported when Django starts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from django.core.exceptions import ImproperlyConfigured

from .errors import UnknownEntity, UnknownRpc
from .retry import RetryPolicy
from .rpc import RpcMethod, RpcSpec

if TYPE_CHECKING:
    from .client import EntityClient

registry: dict[str, type[Entity]] = {}


class Entity:
    """Base class of entity types. Options are class attributes; ``self.entity_id`` is set."""

    entity_type: ClassVar[str] = ""
    max_idle_time: ClassVar[dt.timedelta | float | None] = None
    concurrency: ClassVar[int] = 1
    mailbox_capacity: ClassVar[int | None] = None
    defect_retry_policy: ClassVar[RetryPolicy | None] = None
    shard_group: ClassVar[str | Callable[[str], str]] = "default"

    rpcs: ClassVar[dict[str, RpcSpec]] = {}
    entity_id: str

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.entity_type = cls.__dict__.get("entity_type") or cls.__name__
        specs: dict[str, RpcSpec] = {}
        for klass in reversed(cls.__mro__):
            for value in vars(klass).values():
                if isinstance(value, RpcMethod):
                    specs[value.spec.name] = value.spec
        cls.rpcs = specs
        if cls.concurrency < 1:
            raise ImproperlyConfigured(f"{cls.__name__}.concurrency must be at least 1")
        existing = registry.get(cls.entity_type)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise ImproperlyConfigured(
                f"Two entity types are named {cls.entity_type!r}: {existing.__module__}."
                f"{existing.__qualname__} and {cls.__module__}.{cls.__qualname__}; set "
                "entity_type on one of them."
            )
        registry[cls.entity_type] = cls

    @classmethod
    def client(cls, entity_id: str) -> EntityClient:
        """A client that calls the entity ``entity_id`` of this type, wherever it runs."""
        from .client import EntityClient

        return EntityClient(cls, entity_id)

    @classmethod
    def send_many(
        cls, calls: list[tuple[str, str, dict[str, Any]]], *, priority: int = 0
    ) -> list[int]:
        """Store many persisted calls ``(entity_id, rpc, kwargs)`` in one transaction."""
        from .client import send_many

        return send_many(cls, calls, priority=priority)

    @classmethod
    async def asend_many(
        cls, calls: list[tuple[str, str, dict[str, Any]]], *, priority: int = 0
    ) -> list[int]:
        """Async :meth:`send_many`."""
        from asgiref.sync import sync_to_async

        return await sync_to_async(cls.send_many)(calls, priority=priority)

    @classmethod
    def group_for(cls, entity_id: str) -> str:
        """The shard group of ``entity_id``."""
        group = cls.shard_group
        return group(entity_id) if callable(group) else group

    @classmethod
    def spec(cls, name: str) -> RpcSpec:
        """The rpc named ``name``, or :class:`UnknownRpc`."""
        try:
            return cls.rpcs[name]
        except KeyError:
            raise UnknownRpc(f"{cls.entity_type} has no rpc {name!r}") from None

    @classmethod
    def idle_seconds(cls) -> float:
        """``max_idle_time`` in seconds (the setting's default when unset)."""
        from .conf import cluster_settings

        value = cls.max_idle_time
        if value is None:
            return float(cluster_settings.ENTITY_MAX_IDLE_TIME)
        return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)

    @classmethod
    def capacity(cls) -> int:
        """``mailbox_capacity`` (the setting's default when unset)."""
        from .conf import cluster_settings

        value = cls.mailbox_capacity
        return int(cluster_settings.ENTITY_MAILBOX_CAPACITY if value is None else value)

    @classmethod
    def retry_policy(cls) -> RetryPolicy:
        """``defect_retry_policy`` (the setting's default when unset)."""
        return cls.defect_retry_policy or RetryPolicy.default()

    @classmethod
    def activate(cls, entity_id: str) -> Entity:
        """A new instance for ``entity_id``: ``entity_id`` is set before ``__init__`` runs."""
        instance = cls.__new__(cls)
        instance.entity_id = entity_id
        instance.__init__()  # type: ignore[misc]
        return instance


def entity_class(entity_type: str) -> type[Entity]:
    """The registered entity type named ``entity_type``, or :class:`UnknownEntity`."""
    try:
        return registry[entity_type]
    except KeyError:
        raise UnknownEntity(f"no entity type {entity_type!r} is registered") from None
