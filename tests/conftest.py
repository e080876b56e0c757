"""Shared fixtures: the backend in use and an in-process runner."""

from __future__ import annotations

import asyncio
import faulthandler
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings

from clusterkit.routing import router
from clusterkit.runner import Runner


def pytest_report_header() -> str:
    return f"clusterkit backend: {settings.BACKEND}"


@pytest.fixture
def on_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


@pytest.fixture
def runner(transactional_db: None) -> Iterator[Runner]:
    """A runner on a background thread of the test process, holding every shard."""
    router.cache.clear()
    instance = Runner()
    thread = threading.Thread(target=lambda: asyncio.run(instance.run()), daemon=True)
    thread.start()
    assert instance.ready.wait(30), "runner did not start"
    yield instance
    instance.stop()
    thread.join(30)
    if thread.is_alive():
        faulthandler.dump_traceback(file=sys.stderr)
        pytest.fail("the runner did not stop within 30 s")
    router.cache.clear()


@pytest.fixture(scope="session", autouse=True)
def _close_client_connections(
    django_db_setup: None, django_db_blocker: Any
) -> Iterator[None]:
    """Close the connections of the client's background threads before the test DB goes."""
    yield
    from django.db import connection

    from clusterkit import loop

    loop.close_connections()
    with django_db_blocker.unblock():
        _terminate_others(connection)


def _terminate_others(connection: Any) -> None:
    """Close what else is connected to the test database, so it can be dropped."""
    if connection.vendor == "postgresql":  # runner subprocesses and executor threads
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )




@pytest.fixture
def clean_schedules() -> Iterator[None]:
    """Forget the singletons and cron jobs a test registers."""
    from clusterkit.cron import crons
    from clusterkit.singleton import singletons

    before_s, before_c = dict(singletons), dict(crons)
    yield
    singletons.clear()
    singletons.update(before_s)
    crons.clear()
    crons.update(before_c)
