"""Shared fixtures: which backend the suite runs on."""

from __future__ import annotations

import pytest
from django.conf import settings


def pytest_report_header() -> str:
    return f"clusterkit backend: {settings.BACKEND}"


@pytest.fixture
def on_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
