"""Fixtures for tests with real runner subprocesses."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .harness import RunnerProcess


@pytest.fixture
def spawn(
    transactional_db: None, tmp_path: Path
) -> Iterator[Callable[..., RunnerProcess]]:
    """Start runner subprocesses; every one still alive is stopped after the test."""
    started: list[RunnerProcess] = []

    def start(name: str = "runner", *args: str, **env: str) -> RunnerProcess:
        proc = RunnerProcess(tmp_path, f"{name}-{len(started)}", env or None)
        started.append(proc)
        return proc.start(*args)

    yield start
    for proc in started:
        proc.stop()
