"""Read-only admin of the event log."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import StreamEvent


@admin.register(StreamEvent)
class StreamEventAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Browse events; they are written by streams only."""

    list_display = ("tenant", "channel", "seq", "event", "created_at")
    list_filter = ("tenant", "event")
    search_fields = ("tenant", "channel", "event")
    ordering = ("tenant", "channel", "-seq")
    readonly_fields = ("tenant", "channel", "seq", "event", "data", "key", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
