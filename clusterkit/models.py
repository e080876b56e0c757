"""Storage of the cluster: runners, shard leases, messages and their replies.

Times that the runners compare (``deliver_at``, ``last_read``) are integer milliseconds
since the Unix epoch, compared against the database clock; a message's creation time is
in its snowflake id (:func:`clusterkit.snowflake.timestamp_ms`).
"""

from __future__ import annotations

import datetime as dt

from django.db import models
from django.db.models import Q

from . import snowflake


class Runner(models.Model):
    """A ``runworker`` process: registered on start, heartbeating, removed on stop."""

    machine_id = models.AutoField(primary_key=True)
    address = models.CharField(max_length=255, help_text="host:port of its transport")
    host = models.CharField(max_length=255)
    pid = models.IntegerField()
    groups = models.JSONField(default=list)
    weight = models.FloatField(default=1.0)
    version = models.CharField(max_length=64, blank=True)
    healthy = models.BooleanField(default=True)
    draining = models.BooleanField(default=False)
    started_at = models.DateTimeField()
    last_heartbeat = models.DateTimeField()
    entities_active = models.IntegerField(
        default=0, help_text="live entity instances at its last heartbeat"
    )

    class Meta:
        ordering = ["machine_id"]

    def __str__(self) -> str:
        return f"runner {self.machine_id} ({self.host}:{self.pid})"


class ShardLease(models.Model):
    """Ownership of one shard; ``epoch`` grows on every change of owner (the fence)."""

    shard_group = models.CharField(max_length=64)
    shard_id = models.IntegerField()
    runner = models.ForeignKey(Runner, null=True, blank=True, on_delete=models.SET_NULL)
    epoch = models.BigIntegerField(default=0)
    acquired_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["shard_group", "shard_id"], name="ck_lease_shard")
        ]
        ordering = ["shard_group", "shard_id"]

    def __str__(self) -> str:
        return f"{self.shard_group}:{self.shard_id}"


class MessageKind(models.IntegerChoices):
    REQUEST = 0, "request"
    INTERRUPT = 1, "interrupt"
    ACK = 2, "ack"


class Message(models.Model):
    """A persisted request to an entity, stored before it is delivered."""

    id = models.BigIntegerField(primary_key=True)
    message_key = models.CharField(max_length=255, null=True, blank=True, unique=True)
    shard_group = models.CharField(max_length=64)
    shard_id = models.IntegerField()
    entity_type = models.CharField(max_length=150)
    entity_id = models.CharField(max_length=255)
    kind = models.SmallIntegerField(choices=MessageKind.choices, default=MessageKind.REQUEST)
    rpc = models.CharField(max_length=100)
    payload = models.TextField()
    headers = models.TextField(default="{}")
    priority = models.SmallIntegerField(default=0)
    deliver_at = models.BigIntegerField(null=True, blank=True, help_text="Unix ms")
    last_read = models.BigIntegerField(null=True, blank=True, help_text="Unix ms")
    attempts = models.IntegerField(default=0)
    processed = models.BooleanField(default=False)

    class Meta:
        indexes = [
            models.Index(
                fields=["shard_group", "shard_id", "id"],
                condition=Q(processed=False),
                name="ck_msg_unprocessed",
            ),
            models.Index(fields=["entity_type", "entity_id"], name="ck_msg_entity"),
        ]

    def __str__(self) -> str:
        return f"{self.entity_type}/{self.entity_id}.{self.rpc} #{self.id}"

    @property
    def created_at(self) -> dt.datetime:
        """When the message was made (from its snowflake id)."""
        return dt.datetime.fromtimestamp(snowflake.timestamp_ms(self.id) / 1000, dt.UTC)


class ReplyStatus(models.IntegerChoices):
    SUCCESS = 0, "success"
    FAILURE = 1, "failure"
    INTERRUPTED = 2, "interrupted"


class ReplyKind(models.IntegerChoices):
    EXIT = 0, "exit"
    CHUNK = 1, "chunk"


class Reply(models.Model):
    """The outcome of a message; the unique constraint allows one exit per request."""

    id = models.BigIntegerField(primary_key=True)
    request_id = models.BigIntegerField()
    kind = models.SmallIntegerField(choices=ReplyKind.choices, default=ReplyKind.EXIT)
    sequence = models.IntegerField(default=0)
    status = models.SmallIntegerField(choices=ReplyStatus.choices)
    payload = models.TextField()
    acked = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["request_id", "kind", "sequence"], name="ck_reply_one_per_request"
            )
        ]
        verbose_name_plural = "replies"

    def __str__(self) -> str:
        return f"reply to #{self.request_id}"


class Cluster(Runner):
    """The admin shard view's model: no table of its own, it carries the permissions.

    ``clusterkit.view_cluster`` lets staff see the view; ``clusterkit.operate_cluster``
    lets them drain runners and retry failed messages and jobs from it.
    """

    class Meta:
        proxy = True
        default_permissions = ("view",)
        permissions = [
            ("operate_cluster", "Can drain runners and retry failed messages and jobs"),
        ]
        verbose_name = "cluster"
        verbose_name_plural = "cluster (shard view)"
