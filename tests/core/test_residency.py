"""A backlog over many entities never turns into an unbounded number of live instances."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from django.test import override_settings

from clusterkit.models import Reply
from clusterkit.routing import router
from clusterkit.runner import Runner
from tests.testapp.entities import Counter

pytestmark = pytest.mark.django_db(transaction=True)


@override_settings(CLUSTERKIT={"MAX_RESIDENT_ENTITIES": 50, "MAX_IN_FLIGHT": 100,
                               "SHARD_LEASE_TTL": 3.0, "SHARD_LEASE_RENEW_INTERVAL": 0.5,
                               "POLL_INTERVAL": 0.5})
def test_resident_entities_stay_under_the_cap() -> None:
    ids = Counter.send_many([(f"many-{i}", "increment", {"by": 1}) for i in range(1000)])
    router.cache.clear()
    runner = Runner()
    thread = threading.Thread(target=lambda: asyncio.run(runner.run()), daemon=True)
    thread.start()
    peak = 0
    try:
        assert runner.ready.wait(30)
        deadline = time.monotonic() + 60
        while Reply.objects.filter(request_id__in=ids).count() < len(ids):
            peak = max(peak, len(runner.active))
            assert time.monotonic() < deadline, "the backlog was not handled"
            time.sleep(0.01)
        # Resident instances: the cap, plus at most the entities of the in-flight batch.
        assert peak <= 50 + 100, peak
        assert len(runner.active) <= 50 + 100
    finally:
        runner.stop()
        thread.join(30)
