"""System checks of jobs (``jobs.E0xx``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register

from clusterkit.conf import cluster_settings

from .conf import DEFAULTS


@register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """``JOBS`` has known keys, and every queue maps to a shard group runners host."""
    raw = getattr(settings, "JOBS", None) or {}
    if not isinstance(raw, dict):
        return [Error("settings.JOBS must be a dict.", id="jobs.E001")]
    errors: list[CheckMessage] = [
        Error(f"Unknown key {key!r} in settings.JOBS.", id="jobs.E002")
        for key in raw
        if key not in DEFAULTS
    ]
    groups = set(cluster_settings.SHARD_GROUPS)
    for queue, group in (raw.get("QUEUE_GROUPS") or {}).items():
        if group not in groups:
            errors.append(
                Error(
                    f"JOBS['QUEUE_GROUPS'] maps queue {queue!r} to shard group {group!r}, "
                    "which is not in CLUSTERKIT['SHARD_GROUPS'].",
                    id="jobs.E003",
                )
            )
    return errors
