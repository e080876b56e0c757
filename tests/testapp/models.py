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
