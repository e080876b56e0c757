"""Singletons: a function that runs on exactly one runner of the cluster at a time.

``@singleton("name")`` registers a sync or async callable. It runs on whichever runner
holds the shard of ``name`` in its shard group, is stopped when that shard moves and
started on the new owner; when it raises (or returns) it is restarted with backoff.
An async singleton is cancelled when it must stop; a sync one runs on its own thread
and, if it takes a parameter, gets a :class:`threading.Event` that is set then.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from .retry import RetryPolicy
from .sharding import shard_for

RESTART_POLICY = RetryPolicy(max_attempts=0, base_delay=0.5, factor=2.0, max_delay=30.0)


@dataclasses.dataclass(frozen=True)
class SingletonSpec:
    """A registered singleton and the shard that decides where it runs."""

    name: str
    func: Callable[..., Any]
    shard_group: str

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.func)

    @property
    def takes_stop_event(self) -> bool:
        return bool(inspect.signature(self.func).parameters)

    def shard(self, shards: int) -> tuple[str, int]:
        """The ``(group, shard)`` whose owner runs this singleton."""
        return self.shard_group, shard_for(f"singleton:{self.name}", shards)


singletons: dict[str, SingletonSpec] = {}


def singleton(
    name: str, *, shard_group: str = "default"
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated callable as the cluster-wide singleton ``name``."""

    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        existing = singletons.get(name)
        if existing is not None and existing.func.__qualname__ != func.__qualname__:
            raise ImproperlyConfigured(f"two singletons are named {name!r}")
        singletons[name] = SingletonSpec(name, func, shard_group)
        return func

    return register
