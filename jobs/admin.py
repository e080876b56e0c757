"""Read-only job list with status, errors, attempts and timing; retry and cancel actions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html_join

from clusterkit.admin import ReadOnlyAdmin

from . import engine
from .models import Job

if TYPE_CHECKING:
    JobAdminBase = admin.ModelAdmin[Job]
else:
    JobAdminBase = admin.ModelAdmin


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin, JobAdminBase):
    """Jobs as their definitions plus their state read from the attempt messages."""

    list_display = ("id", "name", "queue", "status", "attempts", "enqueued_at", "finished")
    list_filter = ("queue", "name")
    search_fields = ("id", "name", "concurrency_key")
    readonly_fields = ("status", "attempts", "errors", "return_value")
    actions = ("retry_jobs", "cancel_jobs")

    _states: dict[str, engine.JobState]

    def _state(self, job: Job) -> engine.JobState:
        """The job's state, read once per page."""
        if not hasattr(self, "_states"):
            self._states = {}
        if job.pk not in self._states:
            self._states[job.pk] = engine.state(job.pk)
        return self._states[job.pk]

    @admin.display(description="status")
    def status(self, job: Job) -> str:
        return self._state(job).status

    @admin.display(description="attempts")
    def attempts(self, job: Job) -> int:
        return len(self._state(job).attempts)

    @admin.display(description="finished")
    def finished(self, job: Job) -> str:
        outcomes = self._state(job).outcomes
        return f"{outcomes[-1].finished_at - outcomes[-1].started_at:.3f}s" if outcomes else "-"

    @admin.display(description="errors")
    def errors(self, job: Job) -> str:
        return format_html_join(
            "", "<p><b>attempt {}</b>: {}<pre>{}</pre></p>",
            ((o.attempt, o.error_class, o.error_traceback) for o in self._state(job).errors),
        )

    @admin.display(description="return value")
    def return_value(self, job: Job) -> str:
        return repr(self._state(job).return_value)

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        self._states = {}
        return super().changelist_view(request, extra_context)

    @admin.action(description="Retry the selected failed jobs")
    def retry_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        done = sum(engine.retry(job.pk) for job in queryset)
        self.message_user(request, f"{done} job(s) queued again", messages.SUCCESS)

    @admin.action(description="Cancel the selected jobs")
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        done = sum(engine.cancel(job.pk) for job in queryset)
        self.message_user(request, f"{done} job(s) cancelled", messages.SUCCESS)


from .workflow import admin as workflow_admin  # noqa: E402, F401  (workflow executions)
