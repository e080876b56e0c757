"""Trace context survives web → entity → job → workflow activity; OpenTelemetry spans link."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from django.test import Client, override_settings

from clusterkit import tracing
from clusterkit.runner import Runner
from tests.cluster.harness import wait_until

from . import probes

pytestmark = [pytest.mark.django_db(transaction=True)]
STEPS = ("web", "entity", "job", "activity")


def run_probe(client: Client, trace_id: str) -> None:
    probes.records.clear()
    tag = uuid.uuid4().hex[:12]
    parent = f"00-{trace_id}-{'1' * 16}-01"
    with override_settings(ROOT_URLCONF="tests.ops.probes"):
        response = client.get(
            f"/probe/{tag}/", HTTP_TRACEPARENT=parent, HTTP_X_REQUEST_ID=f"req-{tag}"
        )
    assert response.status_code == 200, response.content
    wait_until(lambda: "activity" in probes.records, 30, "the workflow activity to run", 0.1)
    for step in STEPS:
        traceparent, request_id, _ = probes.records[step]
        assert traceparent is not None, step
        assert traceparent.split("-")[1] == trace_id, (step, traceparent)
        assert request_id == f"req-{tag}", step


def test_trace_id_and_request_id_reach_the_workflow_activity(
    runner: Runner, client: Client
) -> None:
    run_probe(client, uuid.uuid4().hex)


@pytest.fixture
def spans() -> Iterator[list[object]]:
    """Finished OpenTelemetry spans of the test process (an SDK provider with memory export)."""
    pytest.importorskip("opentelemetry.sdk", reason="the otel extra is not installed")
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter.get_finished_spans  # type: ignore[misc]
    exporter.shutdown()


def test_spans_are_linked_from_the_request_to_the_activity(
    runner: Runner, client: Client, spans: object
) -> None:
    assert tracing.active()
    trace_id = uuid.uuid4().hex
    run_probe(client, trace_id)
    wait_until(lambda: any(s.name.startswith("activity") for s in spans()), 10,  # type: ignore[operator]
               "the activity span to end")  # fmt: skip
    mine = [s for s in spans() if f"{s.context.trace_id:032x}" == trace_id]  # type: ignore[operator]
    by_id = {s.context.span_id: s for s in mine}
    names = {s.name for s in mine}
    assert "send ops.TraceProbe.start" in names
    assert "handle ops.TraceProbe.start" in names
    assert "job tests.ops.probes.probe_job" in names
    assert "activity tests.ops.probes.probe_activity" in names, names

    def ancestors(span: object) -> list[str]:
        chain = []
        while span is not None and span.parent is not None:  # type: ignore[attr-defined]
            span = by_id.get(span.parent.span_id)  # type: ignore[attr-defined]
            if span is not None:
                chain.append(span.name)  # type: ignore[attr-defined]
        return chain

    activity = next(s for s in mine if s.name == "activity tests.ops.probes.probe_activity")
    chain = ancestors(activity)
    # activity <- workflow handler <- send from the job <- job <- job attempt handler <- send
    # from the entity <- entity handler <- send from the web request (whose parent is remote)
    assert chain[-1] == "send ops.TraceProbe.start", chain
    assert "handle ops.TraceProbe.start" in chain and "job tests.ops.probes.probe_job" in chain
    root = by_id[next(s.context.span_id for s in mine if s.name == "send ops.TraceProbe.start")]
    assert root.parent is not None and f"{root.parent.span_id:016x}" == "1" * 16
    # the handlers ran with the span's own context: the ids recorded are those of the spans
    assert probes.records["entity"][2] == f"{by_id_named(mine, 'handle ops.TraceProbe.start'):016x}"


def by_id_named(spans: list[object], name: str) -> int:
    return next(s.context.span_id for s in spans if s.name == name)  # type: ignore[attr-defined]
