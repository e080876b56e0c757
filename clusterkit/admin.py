"""Read-only admin pages for the cluster's tables: runners, shard leases, messages, replies.

Everything here is written by runners and callers; the admin is for looking, never for
editing (a hand-edited lease or message would break the fencing and dedup guarantees),
so adding, changing and deleting are refused for everyone, superusers included.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from . import snowflake
from .models import Message, Reply, ReplyKind, ReplyStatus, Runner, ShardLease

if TYPE_CHECKING:
    from django.utils.safestring import SafeString

    RunnerAdminBase = admin.ModelAdmin[Runner]
    ShardLeaseAdminBase = admin.ModelAdmin[ShardLease]
    MessageAdminBase = admin.ModelAdmin[Message]
    ReplyAdminBase = admin.ModelAdmin[Reply]
else:
    RunnerAdminBase = ShardLeaseAdminBase = MessageAdminBase = ReplyAdminBase = admin.ModelAdmin


def _change_url(admin_site: admin.AdminSite, model: type[Any], pk: object) -> str:
    """The admin change (view) page of one row."""
    opts = model._meta
    return reverse(
        f"admin:{opts.app_label}_{opts.model_name}_change", args=[pk], current_app=admin_site.name
    )


def _when(value: dt.datetime) -> str:
    """A UTC time to the millisecond: message times are that close together."""
    return value.astimezone(dt.UTC).isoformat(sep=" ", timespec="milliseconds")


def _created_at(snowflake_id: int) -> str:
    """When a snowflake id was made."""
    return _when(dt.datetime.fromtimestamp(snowflake.timestamp_ms(snowflake_id) / 1000, dt.UTC))


class ReadOnlyAdmin:
    """Mixin refusing add, change and delete: the rows are shown, never edited."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Nobody adds rows by hand."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Nobody edits rows by hand (the change page becomes a read-only view)."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Nobody deletes rows by hand (retention prunes them)."""
        return False


@admin.register(Runner)
class RunnerAdmin(ReadOnlyAdmin, RunnerAdminBase):
    """Registered runner processes and their health."""

    list_display = (
        "machine_id", "address", "host", "pid", "groups", "weight", "healthy", "draining",
        "version", "started_at", "last_heartbeat", "leases",
    )  # fmt: skip
    list_filter = ("healthy", "draining", "version")
    search_fields = ("address", "host", "version")
    ordering = ("machine_id",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Runner]:
        """Runners annotated with how many lease rows name them."""
        return super().get_queryset(request).annotate(_leases=Count("shardlease"))

    @admin.display(description="leases", ordering="_leases")
    def leases(self, obj: Runner) -> int:
        """How many shard leases name the runner (expired ones included until retaken)."""
        return int(getattr(obj, "_leases", 0))


@admin.register(ShardLease)
class ShardLeaseAdmin(ReadOnlyAdmin, ShardLeaseAdminBase):
    """Which runner owns each shard, at which epoch."""

    list_display = ("__str__", "shard_group", "shard_id", "runner", "epoch", "acquired_at",
                    "expires_at")  # fmt: skip
    list_filter = ("shard_group", "runner")
    list_select_related = ("runner",)
    search_fields = ("shard_group", "runner__address", "runner__host")
    ordering = ("shard_group", "shard_id")


class MessageStatusFilter(admin.SimpleListFilter):
    """Messages by outcome: waiting, or answered with a given reply status."""

    title = "outcome"
    parameter_name = "outcome"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        """The choices shown in the sidebar."""
        return [("pending", "pending"), *((str(v), str(label)) for v, label in ReplyStatus.choices)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        """Messages with the chosen outcome."""
        value = self.value()
        if value is None:
            return None
        if value == "pending":
            return queryset.filter(processed=False)
        replied = Reply.objects.filter(kind=ReplyKind.EXIT, status=int(value))
        return queryset.filter(id__in=replied.values("request_id"))


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin, MessageAdminBase):
    """Persisted calls, newest first, with their creation time and reply."""

    list_display = (
        "id", "created", "entity_type", "entity_id", "rpc", "shard_group", "shard_id",
        "priority", "attempts", "processed", "reply_status",
    )  # fmt: skip
    list_filter = (MessageStatusFilter, "processed", "kind", "shard_group", "entity_type")
    search_fields = ("entity_type", "entity_id", "rpc", "=message_key")
    readonly_fields = ("created", "deliver_at_time", "reply_link")
    ordering = ("-id",)
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Message]:
        """Messages annotated with the status of their exit reply (one query for a page)."""
        exit_reply = Reply.objects.filter(request_id=OuterRef("id"), kind=ReplyKind.EXIT)
        return (
            super()
            .get_queryset(request)
            .annotate(
                _reply_status=Subquery(exit_reply.values("status")[:1]),
                _reply_id=Subquery(exit_reply.values("id")[:1]),
            )
        )

    @admin.display(description="created at", ordering="id")
    def created(self, obj: Message) -> str:
        """When the message was made (from its snowflake id)."""
        return _when(obj.created_at)

    @admin.display(description="deliver at")
    def deliver_at_time(self, obj: Message) -> str:
        """The scheduled delivery time, if any."""
        if obj.deliver_at is None:
            return "-"
        return _when(dt.datetime.fromtimestamp(obj.deliver_at / 1000, dt.UTC))

    @admin.display(description="reply")
    def reply_status(self, obj: Message) -> SafeString | str:
        """The reply's status, linked to it; a dash while none is stored."""
        status = getattr(obj, "_reply_status", None)
        reply_id = getattr(obj, "_reply_id", None)
        if status is None or reply_id is None:
            return "-"
        label = ReplyStatus(status).label
        return format_html('<a href="{}">{}</a>', _change_url(self.admin_site, Reply, reply_id),
                           label)  # fmt: skip

    @admin.display(description="reply")
    def reply_link(self, obj: Message) -> SafeString | str:
        """A link to the message's exit reply, with its status and payload."""
        reply = Reply.objects.filter(request_id=obj.id, kind=ReplyKind.EXIT).first()
        if reply is None:
            return "no reply yet"
        return format_html(
            '<a href="{}">reply #{} ({})</a>: <code>{}</code>',
            _change_url(self.admin_site, Reply, reply.pk),
            reply.pk,
            ReplyStatus(reply.status).label,
            reply.payload[:500],
        )


@admin.register(Reply)
class ReplyAdmin(ReadOnlyAdmin, ReplyAdminBase):
    """Stored outcomes of messages, linked to their request."""

    list_display = ("id", "created", "request", "kind", "sequence", "status", "acked")
    list_filter = ("status", "kind", "acked")
    search_fields = ("=request_id",)
    readonly_fields = ("created", "request")
    ordering = ("-id",)
    show_full_result_count = False

    @admin.display(description="created at", ordering="id")
    def created(self, obj: Reply) -> str:
        """When the reply was made (from its snowflake id)."""
        return _created_at(obj.id)

    @admin.display(description="request", ordering="request_id")
    def request(self, obj: Reply) -> SafeString | str:
        """A link to the message this reply answers (gone once pruned)."""
        return format_html(
            '<a href="{}">#{}</a>', _change_url(self.admin_site, Message, obj.request_id),
            obj.request_id,
        )  # fmt: skip

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Reply], search_term: str
    ) -> tuple[QuerySet[Reply], bool]:
        """Also find replies by their request's ``entity_type`` or ``entity_id``."""
        term = search_term.strip()
        if not term:
            return super().get_search_results(request, queryset, search_term)
        if term.isdigit():
            found, duplicates = super().get_search_results(request, queryset, term)
        else:
            found, duplicates = queryset.none(), False
        requests = Message.objects.filter(entity_type=term) | Message.objects.filter(entity_id=term)
        found = found | queryset.filter(request_id__in=requests.values("id"))
        return found, duplicates


from . import admin_cluster  # noqa: E402, F401  (the shard view, /admin/clusterkit/cluster/)

__all__ = ["MessageAdmin", "ReplyAdmin", "RunnerAdmin", "ShardLeaseAdmin"]
