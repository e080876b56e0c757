"""Fixtures of the streaming tests: settings, the runner hosting the streams, helpers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from clusterkit.runner import Runner

CONFIG = {
    "TENANT_RESOLVER": "tests.streaming.support.tenant_from_header",
    "HEARTBEAT_INTERVAL": 0.3,
    "TAIL_CHECK_DELAY": 0.2,
}


@pytest.fixture(autouse=True)
def streaming_config(settings: Any) -> Iterator[dict[str, Any]]:
    settings.STREAMING = {**settings.STREAMING, **CONFIG}  # the layer alias of settings.test
    yield settings.STREAMING


@pytest.fixture
def configure(settings: Any) -> Any:
    """Change ``STREAMING`` keys for one test."""

    def apply(**changes: Any) -> None:
        settings.STREAMING = {**settings.STREAMING, **changes}

    return apply


@pytest.fixture
def streams(runner: Runner) -> Runner:
    """A runner (in this process) hosting the stream entities."""
    return runner


@pytest.fixture
def chan() -> str:
    """A fresh channel name."""
    return f"ch-{uuid.uuid4().hex[:10]}"
