"""The ``JOBS`` setting: one dict, read lazily so ``override_settings`` works."""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings
from django.core.signals import setting_changed

DEFAULTS: dict[str, Any] = {
    # queue name -> shard group (the group must be in CLUSTERKIT["SHARD_GROUPS"])
    "QUEUE_GROUPS": {},
    "MAX_ATTEMPTS": 1,
    "BACKOFF_BASE": 1.0,
    "BACKOFF_MAX": 300.0,
    "RESULT_RETENTION": 7 * 24 * 3600.0,
    "ENQUEUE_ON_COMMIT": True,
}


class JobSettings:
    """Attribute access to ``settings.JOBS`` merged over :data:`DEFAULTS`."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] | None = None

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"Unknown jobs setting {name!r}")
        if self._cache is None:
            user = getattr(django_settings, "JOBS", None) or {}
            self._cache = {**DEFAULTS, **(user if isinstance(user, dict) else {})}
        return self._cache[name]

    def reload(self) -> None:
        self._cache = None


job_settings = JobSettings()


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting == "JOBS":
        job_settings.reload()


setting_changed.connect(_reload)
