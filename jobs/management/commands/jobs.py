"""``manage.py jobs status|retry|prune``."""

from __future__ import annotations

import time
from typing import Any

import msgspec
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q

from clusterkit.models import Message, Reply
from jobs import engine, pruning
from jobs.models import Job


class Command(BaseCommand):
    help = "Jobs: status per queue, retry failed jobs, prune finished ones."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("status", help="ready, running, scheduled and failed jobs per queue")
        retry = sub.add_parser("retry", help="run failed or cancelled jobs again")
        retry.add_argument("job_id", nargs="?", help="a job id")
        retry.add_argument("--failed", action="store_true", help="every failed job")
        prune = sub.add_parser("prune", help="delete finished jobs older than an age")
        prune.add_argument("--older-than", type=float, default=None,
                           help="seconds (default JOBS['RESULT_RETENTION'])")

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, f"do_{options['action']}")(options)

    def do_status(self, options: dict[str, Any]) -> None:
        now_ms = time.time() * 1000
        queues = sorted(set(Job.objects.values_list("queue", flat=True)))
        self.stdout.write(f"{'queue':<20} {'ready':>8} {'running':>8} {'scheduled':>10} "
                          f"{'failed':>8}")
        for queue in queues:
            pending = Message.objects.filter(
                entity_type=engine.ENTITY_TYPE, entity_id__startswith=f"{queue}:", processed=False
            )
            scheduled = pending.filter(deliver_at__gt=now_ms).count()
            running = pending.filter(last_read__isnull=False).count()
            ready = pending.filter(last_read__isnull=True).filter(
                Q(deliver_at__isnull=True) | Q(deliver_at__lte=now_ms)
            ).count()
            finished = list(Job.objects.filter(pk__in=self._finished(queue)))
            failed = sum(1 for s in engine.states(finished).values()
                         if s.status in (engine.FAILED, engine.CANCELLED))
            self.stdout.write(f"{queue:<20} {ready:>8} {running:>8} {scheduled:>10} {failed:>8}")

    def _finished(self, queue: str) -> list[str]:
        """Jobs of ``queue`` whose latest attempt replied with a final failure."""
        failing = Reply.objects.filter(
            Q(payload__contains='"status":"FAILED"') | Q(payload__contains='"status":"CANCELLED"')
            | Q(status=1)
        ).values_list("request_id", flat=True)
        messages = Message.objects.filter(
            entity_type=engine.ENTITY_TYPE, entity_id__startswith=f"{queue}:", id__in=failing
        ).values_list("payload", flat=True)
        ids = {msgspec.json.decode(p)["job"]["job_id"] for p in messages}
        return sorted(ids)

    def do_retry(self, options: dict[str, Any]) -> None:
        if options["failed"] == bool(options["job_id"]):
            raise CommandError("give a job id or --failed (not both)")
        ids = [options["job_id"]] if options["job_id"] else [
            job_id for queue in set(Job.objects.values_list("queue", flat=True))
            for job_id in self._finished(queue)
        ]
        count = 0
        for job_id in ids:
            try:
                count += engine.retry(job_id)
            except Job.DoesNotExist:
                raise CommandError(f"no job {job_id!r}") from None
        self.stdout.write(f"{count} job(s) queued again")

    def do_prune(self, options: dict[str, Any]) -> None:
        age = options["older_than"]
        if age is not None and age < 0:
            raise CommandError("--older-than must not be negative")
        self.stdout.write(f"deleted {pruning.prune_finished(age)} finished job(s)")
