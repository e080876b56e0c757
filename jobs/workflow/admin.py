"""Read-only admin of workflow executions: status, and the history of their steps."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from clusterkit.admin import ReadOnlyAdmin

from . import history
from .handle import cancel
from .models import TERMINAL, WorkflowExecution, WorkflowStep

if TYPE_CHECKING:
    ExecutionAdminBase = admin.ModelAdmin[WorkflowExecution]
    StepInlineBase = admin.TabularInline[WorkflowStep, WorkflowExecution]
else:
    ExecutionAdminBase = admin.ModelAdmin
    StepInlineBase = admin.TabularInline


class StepInline(ReadOnlyAdmin, StepInlineBase):
    """The history: one row per step, in the order the body reached them."""

    model = WorkflowStep
    extra = 0
    can_delete = False
    ordering = ("seq",)
    fields = ("seq", "kind", "name", "state", "tries", "result", "error_type", "wake_at",
              "compensated_at", "compensation_error", "updated_at")  # fmt: skip
    readonly_fields = fields

    @admin.display(description="attempts")
    def tries(self, step: WorkflowStep) -> str:
        failed = sum(1 for a in step.attempts if a.get("error"))
        return f"{len(step.attempts)} ({failed} failed)" if step.attempts else "-"


@admin.register(WorkflowExecution)
class WorkflowExecutionAdmin(ReadOnlyAdmin, ExecutionAdminBase):
    """Executions with their status; cancel and resume go through the workflow API."""

    list_display = ("id", "name", "status", "step_count", "cancel_requested", "created_at",
                    "finished_at")  # fmt: skip
    list_filter = ("status", "name")
    search_fields = ("id", "name", "idempotency_key", "parent")
    readonly_fields = ("id", "name", "idempotency_key", "status", "args", "kwargs", "result",
                       "error_type", "error", "parent", "cancel_requested", "created_at",
                       "updated_at", "finished_at")  # fmt: skip
    inlines = (StepInline,)
    actions = ("cancel_executions", "resume_executions")

    def get_queryset(self, request: HttpRequest) -> QuerySet[WorkflowExecution]:
        return super().get_queryset(request).annotate(_steps=Count("steps"))

    @admin.display(description="steps", ordering="_steps")
    def step_count(self, execution: WorkflowExecution) -> int:
        return int(getattr(execution, "_steps", 0))

    @admin.action(description="Cancel the selected executions (compensations run)")
    def cancel_executions(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        done = sum(cancel(e.pk) for e in queryset)
        self.message_user(request, f"{done} execution(s) cancelled", messages.SUCCESS)

    @admin.action(description="Resume the selected executions (replay now)")
    def resume_executions(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        live = [e.pk for e in queryset if e.status not in TERMINAL]
        for pk in live:
            history.wake(pk, "resume from the admin")
        self.message_user(request, f"{len(live)} execution(s) resumed", messages.SUCCESS)
