"""``manage.py clusterkit status|drain|prune``: look at and operate the cluster."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Count, Q

from clusterkit import dashboard, leases, pruning
from clusterkit.conf import cluster_settings
from clusterkit.models import Message, Runner, ShardLease


class Command(BaseCommand):
    help = "Cluster operations: status (runners, shards, backlog), drain a runner, prune."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("status", help="runners, shards per runner and backlog per shard group")
        drain = sub.add_parser("drain", help="ask a runner to hand over its shards")
        drain.add_argument("runner", type=int, help="the runner's machine id")
        prune = sub.add_parser("prune", help="delete processed messages and their replies")
        prune.add_argument(
            "--older-than", type=float, default=None,
            help="seconds (default CLUSTERKIT['RETENTION'])",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, f"do_{options['action']}")(options)

    def do_status(self, options: dict[str, Any]) -> None:
        held = dict(
            ShardLease.objects.filter(runner__isnull=False)
            .values_list("runner_id")
            .annotate(n=Count("id"))
        )
        runners = list(Runner.objects.all())
        self.stdout.write(f"{len(runners)} runners")
        for r in runners:
            flags = " draining" if r.draining else ""
            self.stdout.write(
                f"  #{r.machine_id} {r.host}:{r.pid} at {r.address}  shards={held.get(r.pk, 0)}"
                f"  heartbeat={r.last_heartbeat:%H:%M:%S}{flags}"
            )
        for group in cluster_settings.SHARD_GROUPS:
            unowned = ShardLease.objects.filter(shard_group=group, runner__isnull=True).count()
            backlog = Message.objects.filter(shard_group=group, processed=False)
            due = backlog.filter(Q(deliver_at__isnull=True) | Q(deliver_at__lte=time.time() * 1000))
            self.stdout.write(
                f"group {group}: {cluster_settings.SHARDS_PER_GROUP} shards, {unowned} unowned, "
                f"backlog {backlog.count()} ({due.count()} due)"
            )
        from clusterkit.singleton import singletons

        shards = int(cluster_settings.SHARDS_PER_GROUP)
        for name, spec in sorted(singletons.items()):
            group, shard = spec.shard(shards)
            owner = (
                ShardLease.objects.filter(shard_group=group, shard_id=shard)
                .values_list("runner_id", flat=True)
                .first()
            )
            where = f"runner #{owner}" if owner else "not running (shard unowned)"
            self.stdout.write(f"singleton {name}: {where}")

    def do_drain(self, options: dict[str, Any]) -> None:
        if not dashboard.drain(options["runner"]):
            raise CommandError(f"no runner #{options['runner']}")
        self.stdout.write(f"runner #{options['runner']} is draining; its shards move shortly")

    def do_prune(self, options: dict[str, Any]) -> None:
        age = options["older_than"]
        if age is not None and age < 0:
            raise CommandError("--older-than must not be negative")
        for name, func in pruning.pruners.items():
            self.stdout.write(f"deleted {func()} {name} past their retention")
        deleted = pruning.prune_messages(age)
        age = float(cluster_settings.RETENTION if age is None else age)
        self.stdout.write(f"deleted {deleted} processed messages older than {age:.0f}s")
        dead = leases.forget_dead(float(cluster_settings.SHARD_LEASE_TTL))
        self.stdout.write(f"forgot {dead} runners silent for ten lease lifetimes")
