"""Where the TATs live: Redis (shared, atomic Lua) or an in-process dict (one process).

Both stores answer :class:`~ratelimit.gcra.Verdict` for the same inputs and raise
:class:`StoreUnavailable` for any failure of the backend, so the failure policy lives in
one place (:mod:`ratelimit.limiter`).
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from . import gcra
from .conf import on_reload, ratelimit_settings


class StoreUnavailable(Exception):
    """The store could not answer (Redis down, timeout, …)."""


@runtime_checkable
class Store(Protocol):
    """Takes ``cost`` permits from bucket ``key`` if that needs no more than ``max_wait`` µs."""

    def decide(
        self, key: str, interval: int, tolerance: int, cost: int, max_wait: int
    ) -> gcra.Verdict: ...

    async def adecide(
        self, key: str, interval: int, tolerance: int, cost: int, max_wait: int
    ) -> gcra.Verdict: ...


class MemoryStore:
    """GCRA in a dict behind a lock: exact within one process, with an injectable clock."""

    SWEEP_EVERY = 4096

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._tats: dict[str, int] = {}
        self._lock = threading.Lock()
        self._calls = 0

    def decide(
        self, key: str, interval: int, tolerance: int, cost: int, max_wait: int
    ) -> gcra.Verdict:
        """One decision; expired buckets are dropped every :attr:`SWEEP_EVERY` calls."""
        with self._lock:
            now = int(self.clock() * 1_000_000)
            new_tat, verdict = gcra.decide(
                self._tats.get(key), now, interval, tolerance, cost, max_wait
            )
            if new_tat is not None:
                self._tats[key] = new_tat
            self._calls += 1
            if self._calls % self.SWEEP_EVERY == 0:
                self._tats = {k: tat for k, tat in self._tats.items() if tat > now}
        return verdict

    async def adecide(
        self, key: str, interval: int, tolerance: int, cost: int, max_wait: int
    ) -> gcra.Verdict:
        """Same as :meth:`decide` (it never blocks on I/O)."""
        return self.decide(key, interval, tolerance, cost, max_wait)

    def clear(self) -> None:
        """Forget every bucket."""
        with self._lock:
            self._tats.clear()


def _verdict(reply: bytes | str) -> gcra.Verdict:
    allowed, remaining, wait, reset = map(int, reply.split())
    return gcra.Verdict(allowed == 1, remaining, wait, reset)


class RedisStore:
    """The Lua script through django-redis' connection (sync) or ``redis.asyncio`` (async).

    EVALSHA with the locally computed SHA1, EVAL only when the server answers NOSCRIPT:
    one round trip per decision. Keys expire by themselves when their bucket is full.
    """

    def __init__(self, alias: str = "default") -> None:
        self.alias = alias
        self._sync: Any = None
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def client(self) -> Any:
        """The raw ``redis.Redis`` of django-redis' cache ``alias`` (thread-safe pool)."""
        if self._sync is None:
            from django_redis import get_redis_connection

            self._sync = get_redis_connection(self.alias)
        return self._sync

    @property
    def async_client(self) -> Any:
        """A ``redis.asyncio.Redis`` for the running loop, built from the cache's LOCATION."""
        loop = asyncio.get_running_loop()
        client = self._async.get(loop)
        if client is None:
            client = self._async[loop] = async_client_for(self.alias)
        return client

    def decide(
        self, key: str, interval: int, tolerance: int, cost: int, max_wait: int
    ) -> gcra.Verdict:
        """One decision, one round trip (two only right after a Redis restart)."""
        from redis.exceptions import NoScriptError, RedisError

        try:
            client = self.client
            try:
                reply = client.evalsha(gcra.SHA, 1, key, interval, tolerance, cost, max_wait)
            except NoScriptError:
                reply = client.eval(gcra.LUA, 1, key, interval, tolerance, cost, max_wait)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from exc
        return _verdict(reply)

    async def adecide(
        self, key: str, interval: int, tolerance: int, cost: int, max_wait: int
    ) -> gcra.Verdict:
        """The async twin of :meth:`decide`."""
        from redis.exceptions import NoScriptError, RedisError

        try:
            client = self.async_client
            try:
                reply = await client.evalsha(gcra.SHA, 1, key, interval, tolerance, cost, max_wait)
            except NoScriptError:
                reply = await client.eval(gcra.LUA, 1, key, interval, tolerance, cost, max_wait)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from exc
        return _verdict(reply)


def redis_url(alias: str) -> str:
    """The first server URL of django-redis cache ``alias`` (LOCATION may be a list)."""
    location: Any = settings.CACHES[alias].get("LOCATION", "redis://127.0.0.1:6379/0")
    if isinstance(location, list | tuple):
        location = location[0]
    return str(location).split(",")[0].strip()


def async_client_for(alias: str) -> Any:
    """A ``redis.asyncio.Redis`` with the password and timeouts of cache ``alias``."""
    from redis import asyncio as aredis

    cache: dict[str, Any] = settings.CACHES[alias]
    options: dict[str, Any] = cache.get("OPTIONS", {})
    kwargs: dict[str, Any] = dict(options.get("CONNECTION_POOL_KWARGS", {}))
    for option, name in [
        ("PASSWORD", "password"),
        ("SOCKET_TIMEOUT", "socket_timeout"),
        ("SOCKET_CONNECT_TIMEOUT", "socket_connect_timeout"),
    ]:
        if option in options:
            kwargs[name] = options[option]
    return aredis.Redis.from_url(redis_url(alias), **kwargs)


def is_django_redis(alias: str) -> bool:
    """Whether cache ``alias`` is configured with django-redis."""
    backend = settings.CACHES.get(alias, {}).get("BACKEND", "")
    return str(backend).startswith("django_redis.")


def build_store() -> Store:
    """The store ``RATELIMIT["STORE"]`` selects (see docs/ratelimit.md)."""
    choice: Any = ratelimit_settings.STORE
    alias = ratelimit_settings.CACHE
    if choice is None:
        choice = "redis" if is_django_redis(alias) else "memory"
    if choice == "redis":
        return RedisStore(alias)
    if choice == "memory":
        return _memory
    if isinstance(choice, str):
        choice = import_string(choice)
        if isinstance(choice, type) or not isinstance(choice, Store):
            choice = choice()  # a class or a factory
    if not isinstance(choice, Store):
        raise ImproperlyConfigured(f"RATELIMIT['STORE'] {choice!r} is not a rate limit store")
    return choice


_memory = MemoryStore()
_store: Store | None = None


def get_store() -> Store:
    """The process-wide store (rebuilt when ``RATELIMIT`` or ``CACHES`` change)."""
    global _store
    if _store is None:
        _store = build_store()
    return _store


def _forget() -> None:
    global _store
    _store = None


on_reload(_forget)
