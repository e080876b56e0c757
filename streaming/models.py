"""The durable event log: one row per published event, numbered per (tenant, channel)."""

from __future__ import annotations

from django.db import models


class StreamEvent(models.Model):
    """An event of a tenant's channel; ``seq`` is consecutive from 1, assigned by its stream."""

    tenant = models.CharField(max_length=128)
    channel = models.CharField(max_length=128)
    seq = models.BigIntegerField()
    event = models.CharField(max_length=64)
    data = models.JSONField(null=True)
    key = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "channel", "seq"], name="streaming_event_unique_seq"
            )
        ]
        ordering = ["tenant", "channel", "seq"]

    def __str__(self) -> str:
        return f"{self.tenant}/{self.channel}#{self.seq} {self.event}"
