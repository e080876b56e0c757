"""Named circuit breakers (pybreaker) with metrics and the ``circuit`` context field.

``breaker("payments")`` is one process-wide :class:`Breaker` per name, configured from
``RATELIMIT["BREAKERS"]``. With the Redis store its state is shared by every process
through pybreaker's ``CircuitRedisStorage``. Each call publishes the breaker's state to
the ``clusterkit_circuit_breaker_state`` gauge and to ``context.current().circuit``
(a read-only mapping of breaker name to ``"closed"``, ``"open"`` or ``"half-open"``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable
from types import MappingProxyType
from typing import Any, TypeVar

import pybreaker
from django.utils.module_loading import import_string

from clusterkit import context

from . import metrics
from .conf import on_reload, ratelimit_settings
from .stores import RedisStore, get_store

logger = logging.getLogger("clusterkit.ratelimit")
T = TypeVar("T")

DEFAULT_BREAKER: dict[str, Any] = {
    "fail_max": 5,
    "reset_timeout": 30.0,
    "success_threshold": 1,
    "exclude": [],
}


def publish(name: str, state: str) -> None:
    """Show ``state`` of breaker ``name`` in the metrics and the current context."""
    metrics.set_breaker_state(name, state)
    states = dict(context.current().circuit or {})
    if states.get(name) != state:
        states[name] = state
        context.update(circuit=MappingProxyType(states))


class _Listener(pybreaker.CircuitBreakerListener):
    """Forwards pybreaker's events to :func:`publish` and the call counter."""

    def state_change(self, cb: Any, old_state: Any, new_state: Any) -> None:
        logger.warning("Circuit breaker %r is now %s", cb.name, new_state.name)
        publish(cb.name, new_state.name)

    def success(self, cb: Any) -> None:
        metrics.count_breaker_call(cb.name, "success")
        publish(cb.name, cb.current_state)

    def failure(self, cb: Any, exc: BaseException) -> None:
        metrics.count_breaker_call(cb.name, "failure")


class Breaker(pybreaker.CircuitBreaker):
    """A pybreaker breaker that also counts rejected calls and has an async ``acall``."""

    def _rejected(self) -> None:
        metrics.count_breaker_call(self.name or "", "rejected")
        publish(self.name or "", pybreaker.STATE_OPEN)

    def call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call ``func`` through the breaker (``CircuitBreakerError`` while it is open)."""
        ran = False

        def run(*a: Any, **kw: Any) -> T:
            nonlocal ran
            ran = True
            return func(*a, **kw)

        try:
            return super().call(run, *args, **kwargs)
        except pybreaker.CircuitBreakerError:
            if not ran:
                self._rejected()
            raise

    async def acall(self, func: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Await ``func(*args, **kwargs)`` through the breaker (no lock held while awaiting)."""
        entered = False
        try:
            with self.calling():
                entered = True
                return await func(*args, **kwargs)
        except pybreaker.CircuitBreakerError:
            if not entered:
                self._rejected()
            raise


def _storage(name: str, shared: bool | None) -> pybreaker.CircuitBreakerStorage | None:
    choice = ratelimit_settings.BREAKER_STORAGE
    store = get_store()
    use_redis = shared if shared is not None else (
        choice == "redis" or (choice is None and isinstance(store, RedisStore))
    )
    if not use_redis:
        return None
    try:
        if not isinstance(store, RedisStore):
            store = RedisStore(ratelimit_settings.CACHE)
        client = store.client
        namespace = f"{ratelimit_settings.KEY_PREFIX}breaker:{name}"
        return pybreaker.CircuitRedisStorage(pybreaker.STATE_CLOSED, client, namespace=namespace)
    except Exception as exc:  # Redis down at creation: keep the breaker local
        logger.warning("Circuit breaker %r uses local state (Redis unavailable: %s)", name, exc)
        return None


def build_breaker(name: str) -> Breaker:
    """A :class:`Breaker` configured from ``BREAKERS["default"]`` and ``BREAKERS[name]``."""
    configured = ratelimit_settings.BREAKERS or {}
    spec = {**DEFAULT_BREAKER, **configured.get("default", {}), **configured.get(name, {})}
    exclude = [import_string(e) if isinstance(e, str) else e for e in spec["exclude"]]
    cb = Breaker(
        fail_max=int(spec["fail_max"]),
        reset_timeout=float(spec["reset_timeout"]),
        success_threshold=int(spec["success_threshold"]),
        exclude=exclude,
        listeners=[_Listener()],
        state_storage=_storage(name, spec.get("shared")),
        name=name,
    )
    metrics.set_breaker_state(name, cb.current_state)
    return cb


_breakers: dict[str, Breaker] = {}
_lock = threading.Lock()


def breaker(name: str) -> Breaker:
    """The process-wide breaker called ``name`` (created on first use)."""
    found = _breakers.get(name)
    if found is None:
        with _lock:
            found = _breakers.get(name)
            if found is None:
                found = _breakers[name] = build_breaker(name)
    return found


on_reload(_breakers.clear)
