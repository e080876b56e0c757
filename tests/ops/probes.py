"""An entity, a task, a workflow and a view that note the context they run with."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, JsonResponse
from django.urls import path

from clusterkit import Entity, context, rpc
from jobs import workflow
from jobs.compat import task

# step -> (traceparent, request id, OpenTelemetry span id or None) where it ran
records: dict[str, tuple[str | None, str | None, str | None]] = {}


def note(step: str) -> None:
    ctx = context.current()
    span_id = None
    try:
        from opentelemetry import trace

        sc = trace.get_current_span().get_span_context()
        span_id = f"{sc.span_id:016x}" if sc.is_valid else None
    except ImportError:
        pass
    records[step] = (ctx.traceparent, ctx.request_id, span_id)


class TraceProbe(Entity):
    """Notes its context, then enqueues a job."""

    entity_type = "ops.TraceProbe"

    @rpc(persisted=True)
    async def start(self, tag: str) -> str:
        note("entity")
        await sync_to_async(probe_job.enqueue)(tag)
        return "started"


@task()
def probe_job(tag: str) -> str:
    note("job")
    probe_flow.with_key(tag).start(tag)
    return tag


@workflow.activity
async def probe_activity(tag: str) -> str:
    note("activity")
    return tag


@workflow.workflow(name="ops-trace-probe")
async def probe_flow(tag: str) -> str:
    return str(await probe_activity(tag))


def probe_view(request: HttpRequest, tag: str) -> JsonResponse:
    note("web")
    return JsonResponse({"reply": TraceProbe.client(tag).start.call(tag=tag)})


urlpatterns: list[Any] = [path("probe/<str:tag>/", probe_view)]
