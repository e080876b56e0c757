"""The ``RATELIMIT`` setting: one dict, read lazily so ``override_settings`` works."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings as django_settings
from django.core.signals import setting_changed

DEFAULTS: dict[str, Any] = {
    "ENABLED": True,
    "STORE": None,  # None: Redis when CACHE is django-redis, else in-process; or a name/path
    "CACHE": "default",
    "KEY_PREFIX": "clusterkit:rl:",
    "FAIL_OPEN": False,
    "FAILURE_RETRY_AFTER": 5,
    "PRESETS": {},
    "RULES": [],
    "HEADERS": True,
    "BREAKERS": {},
    "BREAKER_STORAGE": None,  # None: Redis when the store is Redis; "memory" or "redis"
}

_listeners: list[Callable[[], None]] = []


def on_reload(callback: Callable[[], None]) -> Callable[[], None]:
    """Call ``callback`` whenever ``RATELIMIT`` or ``CACHES`` changes (caches built from them)."""
    _listeners.append(callback)
    return callback


class RatelimitSettings:
    """Attribute access to ``settings.RATELIMIT`` merged over :data:`DEFAULTS`."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] | None = None

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"Unknown ratelimit setting {name!r}")
        if self._cache is None:
            value = getattr(django_settings, "RATELIMIT", None) or {}
            if not isinstance(value, dict):
                raise TypeError("settings.RATELIMIT must be a dict")
            self._cache = {**DEFAULTS, **value}
        return self._cache[name]

    def reload(self) -> None:
        """Forget the cached values and everything built from them."""
        self._cache = None
        for callback in _listeners:
            callback()


ratelimit_settings = RatelimitSettings()


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting in {"RATELIMIT", "CACHES", "CLUSTERKIT"}:
        ratelimit_settings.reload()


setting_changed.connect(_reload)
