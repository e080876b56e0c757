"""Side-effect tables that let tests count what handlers really did."""

from django.db import models


class HandlerRun(models.Model):
    """One execution of a recording handler."""

    entity_id = models.CharField(max_length=255)
    seq = models.IntegerField()
    pid = models.IntegerField()
    key = models.CharField(max_length=255, blank=True)
    out_of_order = models.BooleanField(default=False)


class Beat(models.Model):
    """A row written by a singleton or a cron job of the tests."""

    name = models.CharField(max_length=100)
    instant = models.CharField(max_length=64, blank=True)
    pid = models.IntegerField()
    at = models.FloatField()


class TrackedRun(models.Model):
    """One execution of ``Tracked.handle``: which process ran which call, and when."""

    entity_id = models.CharField(max_length=255, db_index=True)
    seq = models.IntegerField()
    key = models.CharField(max_length=255, blank=True)
    pid = models.IntegerField()
    runner_id = models.IntegerField()
    started = models.FloatField()
    ended = models.FloatField()
    out_of_order = models.BooleanField(default=False)


class SingletonSpan(models.Model):
    """One run of the ``test-span`` singleton: from its start to when it saw its stop."""

    pid = models.IntegerField()
    started = models.FloatField()
    last_seen = models.FloatField()
    ended = models.FloatField(null=True)
