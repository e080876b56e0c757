"""Which shard an entity lives on.

``shard_for(entity_id) = int.from_bytes(blake2b(entity_id.encode("utf-8"), digest_size=8),
"big") % shards_per_group`` — a stable, documented hash (never Python's salted
``hash()``), so every process of every version agrees. Shards are numbered from 0.
"""

from __future__ import annotations

import hashlib

from .conf import cluster_settings


def stable_hash(value: str) -> int:
    """The 64-bit unsigned hash of ``value`` that sharding is defined by."""
    return int.from_bytes(hashlib.blake2b(value.encode("utf-8"), digest_size=8).digest(), "big")


def shard_for(entity_id: str, shards: int | None = None) -> int:
    """The shard (0-based) of ``entity_id`` among ``shards`` (default ``SHARDS_PER_GROUP``)."""
    count = cluster_settings.SHARDS_PER_GROUP if shards is None else shards
    return stable_hash(entity_id) % count


def rendezvous_score(runner_key: str, group: str, shard: int, weight: float = 1.0) -> float:
    """Weighted rendezvous (highest random weight) score of a runner for one shard.

    The owner of a shard is the healthy runner with the highest score; a runner joining
    or leaving moves only the shards it wins or held (about 1/N of them).
    """
    import math

    h = stable_hash(f"{group}:{shard}:{runner_key}")
    unit = (h + 1) / 2.0**64  # in (0, 1]
    return -weight / math.log(unit) if unit < 1.0 else float("inf")
