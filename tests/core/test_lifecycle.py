"""Entity passivation, connection hygiene of sync callers, and the core system checks."""

from __future__ import annotations

import threading
import time

import pytest
from django.core.checks import run_checks
from django.db import connection, connections
from django.test import override_settings

from clusterkit.runner import Runner
from tests.testapp.entities import Counter

pytestmark = pytest.mark.django_db(transaction=True)


def test_idle_entities_are_passivated(runner: Runner) -> None:
    class Ephemeral(Counter):
        entity_type = "Ephemeral"
        max_idle_time = 0.3

    client = Ephemeral.client("e1")
    assert client.increment.call(by=5) == 5
    assert ("Ephemeral", "e1") in runner.active
    deadline = time.monotonic() + 10
    while ("Ephemeral", "e1") in runner.active:
        assert time.monotonic() < deadline, "the idle entity was never passivated"
        time.sleep(0.1)
    assert client.get.call() == 0  # a fresh activation: in-memory state starts again
    assert ("Counter", "busy") not in runner.active


def backends() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return int(cursor.fetchone()[0])


def test_sync_callers_do_not_leak_connections(runner: Runner, on_postgres: bool) -> None:
    if not on_postgres:
        pytest.skip("counts PostgreSQL backends")
    Counter.client("warm").increment.call()
    Counter.client("warm").get.call()
    before = backends()

    def view_thread(n: int) -> None:  # what a sync view does, and Django's request_finished
        for i in range(10):
            Counter.client(f"t{n}").increment.call(by=i)
            Counter.client(f"t{n}").get.call()
        connections.close_all()

    threads = [threading.Thread(target=view_thread, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert backends() <= before + 5  # a leak would be one per calling thread (20)


def ids(**settings: object) -> set[str]:
    with override_settings(**settings):
        return {m.id for m in run_checks() if m.id and m.id.startswith("clusterkit.")}


def test_system_checks() -> None:
    assert ids() == set()
    assert "clusterkit.E001" in ids(CLUSTERKIT=["not", "a", "dict"])
    assert "clusterkit.E002" in ids(CLUSTERKIT={"SHARDS": 3})
    assert "clusterkit.E003" in ids(CLUSTERKIT={"SHARDS_PER_GROUP": 0})
    assert "clusterkit.E004" in ids(CLUSTERKIT={"SHARD_GROUPS": []})
    assert "clusterkit.E005" in ids(
        CLUSTERKIT={"SHARD_LEASE_TTL": 2.0, "SHARD_LEASE_RENEW_INTERVAL": 1.5}
    )


def test_app_order_check_warns_when_channels_comes_first() -> None:
    from django.apps import apps
    from django.conf import settings

    order = [a for a in settings.INSTALLED_APPS if a not in ("channels", "clusterkit")]
    with override_settings(INSTALLED_APPS=["channels", "clusterkit", *order]):
        found = {m.id for m in run_checks()}
    apps.clear_cache()
    assert "clusterkit.W001" in found
