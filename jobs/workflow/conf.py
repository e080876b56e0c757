"""The ``WORKFLOWS`` setting: one dict, read lazily so ``override_settings`` works."""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings
from django.core.signals import setting_changed

DEFAULTS: dict[str, Any] = {
    # Sleeps (and rate-limit delays) up to this many seconds wait in memory; longer ones
    # suspend the execution and are woken by a scheduled message.
    "SLEEP_IN_MEMORY_THRESHOLD": 1.0,
    # The shard group of the workflow entities (must be in CLUSTERKIT["SHARD_GROUPS"]).
    "SHARD_GROUP": "default",
    # Attempts of an activity unless its @activity(retry=...) says otherwise.
    "ACTIVITY_MAX_ATTEMPTS": 3,
    "ACTIVITY_BACKOFF_BASE": 0.5,
    "ACTIVITY_BACKOFF_MAX": 30.0,
    # How often result() looks at the execution at most (it starts at 10 ms).
    "RESULT_POLL_INTERVAL": 0.5,
}


class WorkflowSettings:
    """Attribute access to ``settings.WORKFLOWS`` merged over :data:`DEFAULTS`."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] | None = None

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"Unknown workflows setting {name!r}")
        if self._cache is None:
            user = getattr(django_settings, "WORKFLOWS", None) or {}
            self._cache = {**DEFAULTS, **(user if isinstance(user, dict) else {})}
        return self._cache[name]

    def reload(self) -> None:
        self._cache = None


workflow_settings = WorkflowSettings()


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting == "WORKFLOWS":
        workflow_settings.reload()


setting_changed.connect(_reload)
