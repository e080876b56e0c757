"""Retention: the pruners that delete old records, run together hourly by one runner.

The core prunes processed messages past ``RETENTION`` and forgets runners silent for ten
lease lifetimes (killed ones leave their row behind); apps add their own with
:func:`register` (jobs prunes finished jobs past ``JOBS['RESULT_RETENTION']``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from . import leases, snowflake
from .conf import cluster_settings
from .storage import Storage

Pruner = Callable[[], int]
pruners: dict[str, Pruner] = {}


def register(name: str, func: Pruner) -> None:
    """Run ``func`` (returns how many records it deleted) with every pruning pass."""
    pruners[name] = func


def prune_messages(older_than: float | None = None) -> int:
    """Delete processed messages (and their replies) older than ``older_than`` seconds."""
    age = float(cluster_settings.RETENTION if older_than is None else older_than)
    before = snowflake.lowest_id_at(int((time.time() - age) * 1000))
    return Storage().prune(before)


def prune_all() -> dict[str, int]:
    """One pass: each app's pruner first (they may read messages), then the messages."""
    counts = {name: func() for name, func in pruners.items()}
    counts["messages"] = prune_messages()
    counts["dead runners"] = leases.forget_dead(float(cluster_settings.SHARD_LEASE_TTL))
    return counts
