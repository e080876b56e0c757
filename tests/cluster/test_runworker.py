"""``runworker`` as a process: graceful stop on SIGTERM, and Channels consumers beside it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.cache import cache

from clusterkit.models import Runner, ShardLease
from clusterkit.routing import router
from tests.testapp.entities import Counter

from .harness import RunnerProcess, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.subprocess]


def test_sigterm_drains_and_releases_leases_at_once(spawn: Callable[..., RunnerProcess]) -> None:
    proc = spawn("graceful")
    assert Counter.client("g").increment.call(by=3) == 3
    assert ShardLease.objects.filter(runner__isnull=False).count() == 300
    Counter.send_many([(f"g{i}", "increment", {"by": 1}) for i in range(500)])
    started = time.monotonic()
    assert proc.terminate(timeout=30) == 0
    assert time.monotonic() - started < 10
    assert not ShardLease.objects.filter(runner__isnull=False).exists()
    assert not Runner.objects.exists()

    router.cache.clear()
    spawn("successor")  # takes the shards over at once, no lease expiry to wait for
    assert Counter.client("g").increment.options(timeout=10).call(by=1) >= 1


def test_runworker_also_runs_channels_consumers(
    spawn: Callable[..., RunnerProcess], on_postgres: bool
) -> None:
    if not on_postgres:
        pytest.skip("the in-memory channel layer does not cross processes")
    spawn("with-channels", "clusterkit-echo")
    key = uuid.uuid4().hex
    layer = get_channel_layer()
    assert layer is not None
    async_to_sync(layer.send)("clusterkit-echo", {"type": "echo", "key": key, "value": "hi"})
    wait_until(lambda: cache.get(f"echo:{key}") == "hi", 20, "the consumer to run")
    assert Counter.client("both").increment.call() == 1
