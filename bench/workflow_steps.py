"""The workflow ``bench.workflows`` measures: three no-op activities (imported by runners
through the autodiscovered ``bench.workflows``)."""

from __future__ import annotations

from jobs import workflow


@workflow.activity(name="bench.noop", retry=1)
async def noop(n: int) -> int:
    return n


@workflow.workflow(name="bench.three_noops")
async def three_noops(n: int) -> int:
    return int(await noop(n)) + int(await noop(n)) + int(await noop(n))
