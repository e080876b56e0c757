"""Pruning of finished jobs: their rows, attempt messages and replies go together."""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from clusterkit.models import Message, Reply

from . import engine
from .conf import job_settings
from .models import Job

FINISHED = (engine.SUCCESSFUL, engine.FAILED, engine.CANCELLED)


def prune_finished(older_than: float | None = None, batch: int = 500) -> int:
    """Delete jobs enqueued more than ``older_than`` seconds ago (default
    ``JOBS['RESULT_RETENTION']``) that have finished; returns how many went."""
    age = float(job_settings.RESULT_RETENTION if older_than is None else older_than)
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=age)
    deleted, last = 0, ""
    while True:
        jobs = list(Job.objects.filter(enqueued_at__lt=cutoff, pk__gt=last).order_by("pk")[:batch])
        if not jobs:
            return deleted
        last = jobs[-1].pk
        done = [s for s in engine.states(jobs).values() if s.status in FINISHED]
        message_ids = [m.id for s in done for m, _ in s.attempts]
        with transaction.atomic():
            Reply.objects.filter(request_id__in=message_ids).delete()
            Message.objects.filter(id__in=message_ids).delete()
            Job.objects.filter(pk__in=[s.job.pk for s in done]).delete()
        deleted += len(done)
