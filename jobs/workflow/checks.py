"""System checks of workflows (``jobs.E1xx``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from clusterkit.conf import cluster_settings

from .conf import DEFAULTS


@register()
def check_workflow_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """``WORKFLOWS`` has known keys and sane values; its shard group is hosted."""
    raw = getattr(settings, "WORKFLOWS", None)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        return [Error("settings.WORKFLOWS must be a dict.", id="jobs.E101")]
    errors: list[CheckMessage] = [
        Error(f"Unknown key {key!r} in settings.WORKFLOWS.", id="jobs.E102")
        for key in raw
        if key not in DEFAULTS
    ]
    group = raw.get("SHARD_GROUP", DEFAULTS["SHARD_GROUP"])
    if group not in set(cluster_settings.SHARD_GROUPS):
        errors.append(Error(
            f"WORKFLOWS['SHARD_GROUP'] is {group!r}, which is not in "
            "CLUSTERKIT['SHARD_GROUPS']: no runner would host the workflows.",
            id="jobs.E103",
        ))
    for key in ("SLEEP_IN_MEMORY_THRESHOLD", "ACTIVITY_BACKOFF_BASE", "ACTIVITY_BACKOFF_MAX",
                "RESULT_POLL_INTERVAL"):
        value = raw.get(key, DEFAULTS[key])
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            errors.append(Error(f"WORKFLOWS[{key!r}] must be a number of seconds >= 0.",
                                id="jobs.E104"))
    attempts = raw.get("ACTIVITY_MAX_ATTEMPTS", DEFAULTS["ACTIVITY_MAX_ATTEMPTS"])
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        errors.append(Error("WORKFLOWS['ACTIVITY_MAX_ATTEMPTS'] must be an integer >= 1.",
                            id="jobs.E105"))
    threshold = raw.get("SLEEP_IN_MEMORY_THRESHOLD", DEFAULTS["SLEEP_IN_MEMORY_THRESHOLD"])
    read_lease = cluster_settings.READ_LEASE
    if isinstance(threshold, int | float) and isinstance(read_lease, int | float) and (
        threshold >= read_lease
    ):
        errors.append(Warning(
            "WORKFLOWS['SLEEP_IN_MEMORY_THRESHOLD'] is not below CLUSTERKIT['READ_LEASE']: "
            "a replay sleeping in memory that long would be delivered a second time.",
            id="jobs.W101",
        ))
    return errors
