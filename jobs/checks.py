"""System checks of jobs (``jobs.E0xx``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from clusterkit.conf import cluster_settings

from .conf import DEFAULTS, job_settings


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


@register()
def check_retention(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Finished jobs must not outlive their attempt messages (their status is read there)."""
    kept, messages = job_settings.RESULT_RETENTION, cluster_settings.RETENTION
    if isinstance(kept, bool) or not isinstance(kept, int | float) or kept <= 0:
        return [Error("JOBS['RESULT_RETENTION'] must be a positive number of seconds.",
                      id="jobs.E004")]
    if isinstance(messages, int | float) and kept > messages:
        return [Warning(
            f"JOBS['RESULT_RETENTION'] ({kept:.0f}s) is longer than CLUSTERKIT['RETENTION'] "
            f"({messages:.0f}s): processed attempt messages are pruned first, and older "
            "jobs would lose their status and results.",
            hint="Keep RESULT_RETENTION at most RETENTION.", id="jobs.W001",
        )]
    return []
