"""Named circuit breakers: trip, reject, recover; state in the context and the metrics."""

from __future__ import annotations

import time

import pybreaker
import pytest
from django.test import override_settings
from prometheus_client import REGISTRY

from clusterkit import context
from ratelimit import breaker
from ratelimit.breaker import Breaker, build_breaker

from .conftest import redis_limits


def boom() -> None:
    raise ConnectionError("service down")


def gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value("clusterkit_circuit_breaker_state", {"breaker": name})


def calls(name: str, outcome: str) -> float:
    labels = {"breaker": name, "outcome": outcome}
    return REGISTRY.get_sample_value("clusterkit_circuit_breaker_calls_total", labels) or 0.0


CONFIG = {"BREAKERS": {"default": {"fail_max": 2, "reset_timeout": 0.2}}}


def test_trips_rejects_and_recovers() -> None:
    with override_settings(RATELIMIT={**CONFIG, "STORE": "memory"}), context.use(
        context.RequestContext()
    ):
        cb = breaker("payments")
        assert breaker("payments") is cb and isinstance(cb, Breaker)
        assert cb.call(lambda: 1) == 1
        assert context.current().circuit == {"payments": "closed"} and gauge("payments") == 0
        with pytest.raises(ConnectionError):
            cb.call(boom)
        with pytest.raises(pybreaker.CircuitBreakerError):
            cb.call(boom)  # second failure trips it
        assert context.current().circuit["payments"] == "open" and gauge("payments") == 2
        rejected = calls("payments", "rejected")
        with pytest.raises(pybreaker.CircuitBreakerError):
            cb.call(lambda: 1)
        assert calls("payments", "rejected") == rejected + 1
        time.sleep(0.25)
        assert cb.call(lambda: 2) == 2  # half-open trial succeeds: closed again
        assert context.current().circuit["payments"] == "closed" and gauge("payments") == 0
    assert context.current().circuit is None


async def test_async_calls() -> None:
    async def ok() -> str:
        return "ok"

    async def fail() -> None:
        raise ConnectionError

    with override_settings(RATELIMIT={**CONFIG, "STORE": "memory"}):
        cb = breaker("search")
        assert await cb.acall(ok) == "ok"
        with pytest.raises(ConnectionError):
            await cb.acall(fail)
        with pytest.raises(pybreaker.CircuitBreakerError):
            await cb.acall(fail)
        with pytest.raises(pybreaker.CircuitBreakerError):
            await cb.acall(ok)
        assert context.current().circuit["search"] == "open"


def test_excluded_exceptions_do_not_count() -> None:
    breakers = {"default": {"fail_max": 1, "exclude": ["builtins.KeyError"]}}
    with override_settings(RATELIMIT={"BREAKERS": breakers, "STORE": "memory"}):
        cb = breaker("lookup")
        for _ in range(3):
            with pytest.raises(KeyError):
                cb.call(lambda: {}["x"])
        assert cb.current_state == "closed"


def test_state_shared_through_redis() -> None:
    with redis_limits(**CONFIG) as prefix:
        first = breaker("mail")
        assert isinstance(first._state_storage, pybreaker.CircuitRedisStorage)
        first.open()
        assert build_breaker("mail").current_state == "open"  # what another process sees
        keys = first._state_storage._redis.keys(f"{prefix}breaker:mail:pybreaker:*")
        assert len(keys) >= 3  # under our prefix, so deleted with the test's keys
