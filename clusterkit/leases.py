"""Runner registration and shard leases, all timed by the database clock.

Every runner computes the same owner for every shard from the healthy runners (weighted
rendezvous hashing), so there is no coordinator: each one takes the free or expired
leases it should own, renews what it holds well inside the expiry, and gives up what
it should no longer own. ``epoch`` grows on every change of owner; a result is committed
only under the epoch it was claimed under (see :meth:`Storage.commit`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import socket
from collections.abc import Iterable

from django.db import transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Q
from django.db.models.functions import Now

from .models import Runner, ShardLease
from .sharding import rendezvous_score
from .storage import Storage

ShardKey = tuple[str, int]


def now_plus(seconds: float) -> ExpressionWrapper:
    """The database clock plus ``seconds``."""
    return ExpressionWrapper(Now() + dt.timedelta(seconds=seconds), output_field=DateTimeField())


def register(address: str, groups: list[str], weight: float, version: str) -> Runner:
    """Insert this process's ``Runner`` row (its primary key is the machine id)."""
    runner = Runner.objects.create(
        address=address,
        host=socket.gethostname(),
        pid=os.getpid(),
        groups=groups,
        weight=weight,
        version=version,
        started_at=Now(),
        last_heartbeat=Now(),
    )
    runner.refresh_from_db()
    return runner


def ensure_shards(groups: Iterable[str], shards: int) -> None:
    """Create the lease rows of every shard of ``groups`` (idempotent)."""
    for group in groups:
        if ShardLease.objects.filter(shard_group=group).count() >= shards:
            continue
        ShardLease.objects.bulk_create(
            [ShardLease(shard_group=group, shard_id=i) for i in range(shards)],
            ignore_conflicts=True,
        )


@dataclasses.dataclass
class LeaseState:
    """What one lease tick found: the shards held (with epochs) and those newly taken."""

    held: dict[ShardKey, int]
    acquired: list[ShardKey]
    alive: bool
    released: list[ShardKey] = dataclasses.field(default_factory=list)  # handed over


def healthy_runners(ttl: float) -> list[Runner]:
    """Runners that heartbeated within ``ttl`` seconds and are not draining."""
    cutoff = ExpressionWrapper(Now() - dt.timedelta(seconds=ttl), output_field=DateTimeField())
    return list(
        Runner.objects.filter(last_heartbeat__gt=cutoff, draining=False, healthy=True).only(
            "machine_id", "weight", "groups"
        )
    )


def assignment(runners: list[Runner], group: str, shards: int) -> dict[int, int]:
    """``{shard: runner machine id}`` for ``group``: the rendezvous winner of each shard."""
    members = [r for r in runners if group in (r.groups or [])]
    owners: dict[int, int] = {}
    if not members:
        return owners
    for shard in range(shards):
        best = max(
            members,
            key=lambda r: rendezvous_score(str(r.machine_id), group, shard, r.weight),
        )
        owners[shard] = best.machine_id
    return owners


def tick(
    runner_id: int,
    groups: list[str],
    shards: int,
    ttl: float,
    busy: set[ShardKey],
    draining: bool,
    entities: int = 0,
) -> LeaseState:
    """Heartbeat, renew, give up what moved away (unless busy) and take what is ours.

    A draining runner (``draining``, or flagged by ``clusterkit drain``) owns nothing
    and gives up every shard it is not busy with.
    """
    with transaction.atomic():
        alive = bool(
            Runner.objects.filter(pk=runner_id).update(
                last_heartbeat=Now(), entities_active=entities
            )
        )
        ShardLease.objects.filter(runner_id=runner_id).update(expires_at=now_plus(ttl))
    if not alive:
        return LeaseState(held={}, acquired=[], alive=False)
    draining = draining or Runner.objects.filter(pk=runner_id, draining=True).exists()
    runners = healthy_runners(ttl)
    acquired: list[ShardKey] = []
    released: list[ShardKey] = []
    for group in groups:
        owners = {} if draining else assignment(runners, group, shards)
        mine = {s for s, owner in owners.items() if owner == runner_id}
        held = set(
            ShardLease.objects.filter(
                shard_group=group, runner_id=runner_id, expires_at__gt=Now()
            ).values_list("shard_id", flat=True)
        )
        give_up = [s for s in held - mine if (group, s) not in busy]
        if give_up:
            ShardLease.objects.filter(
                shard_group=group, shard_id__in=give_up, runner_id=runner_id
            ).update(runner=None, expires_at=None)
            released.extend((group, s) for s in give_up)
        wanted = sorted(mine - held)
        if wanted:
            before = dict(
                ShardLease.objects.filter(shard_group=group, shard_id__in=wanted).values_list(
                    "shard_id", "epoch"
                )
            )
            # Take the leases and reset their messages' read leases in one transaction: a
            # claim of ours sees the shard either not yet ours, or ours and reset, so it
            # never starts on a later message while an earlier one is still read-leased.
            with transaction.atomic():
                ShardLease.objects.filter(shard_group=group, shard_id__in=wanted).filter(
                    Q(runner__isnull=True) | Q(expires_at__isnull=True) | Q(expires_at__lt=Now())
                ).update(
                    runner_id=runner_id,
                    epoch=F("epoch") + 1,
                    acquired_at=Now(),
                    expires_at=now_plus(ttl),
                )
                taken = ShardLease.objects.filter(
                    shard_group=group, shard_id__in=wanted, runner_id=runner_id
                ).values_list("shard_id", "epoch")
                new = [s for s, epoch in taken if epoch != before.get(s)]
                if new:
                    Storage().reset_read_leases(group, new)
            acquired.extend((group, s) for s in new)
    held_now = {
        (g, s): e
        for g, s, e in ShardLease.objects.filter(
            runner_id=runner_id, expires_at__gt=Now()
        ).values_list("shard_group", "shard_id", "epoch")
    }
    return LeaseState(held=held_now, acquired=acquired, alive=True, released=released)


def release_all(runner_id: int) -> int:
    """Give up every lease of ``runner_id`` at once (graceful stop)."""
    return ShardLease.objects.filter(runner_id=runner_id).update(runner=None, expires_at=None)


def unregister(runner_id: int) -> None:
    """Release the leases of ``runner_id`` and delete its row."""
    with transaction.atomic():
        release_all(runner_id)
        Runner.objects.filter(pk=runner_id).delete()


def mark_draining(runner_id: int) -> None:
    """Flag ``runner_id`` as draining: the others stop assigning shards to it."""
    Runner.objects.filter(pk=runner_id).update(draining=True)


def forget_dead(ttl: float) -> int:
    """Delete runners silent for ten lease lifetimes (their leases expired long ago)."""
    cutoff = ExpressionWrapper(Now() - dt.timedelta(seconds=ttl * 10), output_field=DateTimeField())
    deleted, _ = Runner.objects.filter(last_heartbeat__lt=cutoff).delete()
    return deleted
