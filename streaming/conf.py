"""The ``STREAMING`` setting: one dict, read lazily so ``override_settings`` works."""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings
from django.core.signals import setting_changed

DEFAULTS: dict[str, Any] = {
    # Tenant used when neither the caller nor the request context names one.
    "DEFAULT_TENANT": "public",
    # Callable(request) -> tenant for Channels scopes (import path or callable);
    # None: the same CLUSTERKIT["TENANT_RESOLVER"] the HTTP middleware uses.
    "TENANT_RESOLVER": None,
    # Callable(user, tenant, channel) -> bool deciding who may read a channel.
    "AUTHORIZE": "streaming.auth.authenticated",
    # Log retention: keep at most this many events per channel, and none older than AGE s.
    "RETENTION_COUNT": 10_000,
    "RETENTION_AGE": 24 * 3600.0,
    # The stream entity prunes its log every this many appends (and on activation).
    "PRUNE_EVERY": 500,
    # Seconds between heartbeats (SSE comment / WebSocket frame).
    "HEARTBEAT_INTERVAL": 15.0,
    # The SSE ``retry:`` hint sent to browsers, in milliseconds.
    "RETRY_MS": 3000,
    # Events buffered per subscriber before the oldest are dropped (then refetched).
    "SUBSCRIBER_BUFFER": 1000,
    # Events fetched from the log per query when replaying or filling a gap.
    "REPLAY_BATCH": 500,
    # Quiet seconds after activity before a process checks the log for dropped tail events.
    "TAIL_CHECK_DELAY": 0.5,
    # Seconds between re-adds of a process's groups (channel layers expire groups).
    "GROUP_REFRESH": 3600.0,
    # Channel layer alias used for fan-out between processes.
    "CHANNEL_LAYER": "default",
    # Longest channel name and event name accepted.
    "MAX_CHANNEL_LENGTH": 100,
    "MAX_EVENT_LENGTH": 64,
    # Channels one WebSocket may subscribe to at once.
    "MAX_SUBSCRIPTIONS": 50,
}


class StreamingSettings:
    """Attribute access to ``settings.STREAMING`` merged over :data:`DEFAULTS`."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] | None = None

    @property
    def user_settings(self) -> dict[str, Any]:
        """The project's own ``STREAMING`` dict (empty when unset)."""
        value = getattr(django_settings, "STREAMING", None) or {}
        if not isinstance(value, dict):
            raise TypeError("settings.STREAMING must be a dict")
        return value

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"Unknown streaming setting {name!r}")
        if self._cache is None:
            self._cache = {**DEFAULTS, **self.user_settings}
        return self._cache[name]

    def reload(self) -> None:
        """Forget the cached values (called when ``STREAMING`` changes in tests)."""
        self._cache = None


streaming_settings = StreamingSettings()


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting == "STREAMING":
        streaming_settings.reload()


setting_changed.connect(_reload)
