"""GCRA behaviour: burst, steady rate, no 2x at window boundaries (simulated and real time)."""

from __future__ import annotations

import time

import pytest
from django.test import override_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from ratelimit import check
from ratelimit.gcra import decide
from ratelimit.stores import MemoryStore

from .conftest import Configure, FakeClock, redis_limits

PRESETS = {"t": {"rate": "10/m"}, "burst": {"rate": "60/m", "burst": 5}}


@pytest.fixture
def simulated(clock: FakeClock) -> FakeClock:
    with override_settings(RATELIMIT={"STORE": MemoryStore(clock), "PRESETS": PRESETS}):
        yield clock


def allowed(n: int, preset: str = "t", key: str = "k") -> int:
    return sum(check(preset, key).allowed for _ in range(n))


def test_burst_then_steady_rate(simulated: FakeClock) -> None:
    assert allowed(10) == 10  # a full bucket: the whole burst at once
    refused = check("t", "k")
    assert not refused.allowed and refused.retry_after == pytest.approx(6.0)
    simulated.advance(5.9)
    assert allowed(1) == 0
    simulated.advance(0.1)
    assert allowed(2) == 1  # one permit every 6 s
    for _ in range(100):  # at exactly the rate, nothing is ever refused
        simulated.advance(6.0)
        assert allowed(1) == 1


def test_burst_smaller_than_limit(simulated: FakeClock) -> None:
    assert allowed(20, "burst") == 5
    simulated.advance(1.0)
    assert allowed(20, "burst") == 1
    simulated.advance(60.0)
    assert allowed(100, "burst") == 5  # refilled only up to the burst


def test_window_boundary_does_not_double(simulated: FakeClock) -> None:
    """A fixed window lets 10 at 59.9 s and 10 more at 60.1 s; GCRA does not."""
    simulated.advance(59.9)
    first = allowed(10)
    simulated.advance(0.2)
    second = allowed(10)
    assert first == 10 and second == 0
    # and over any 60 s at most burst + rate * 60 s get through
    total = 0
    for _ in range(600):
        simulated.advance(0.1)
        total += allowed(1)
    assert total == 10


def test_remaining_and_reset(simulated: FakeClock) -> None:
    d = check("t", "k")
    assert (d.remaining, d.reset, d.limit, d.window) == (9, 6.0, 10, 60.0)
    simulated.advance(3.0)
    d = check("t", "k")
    assert (d.remaining, d.reset) == (8, 9.0)


def test_cost_takes_several_permits(simulated: FakeClock) -> None:
    assert check("t", "k", cost=7).allowed
    assert not check("t", "k", cost=4).allowed
    assert check("t", "k", cost=3).allowed


def test_keys_and_presets_are_separate(simulated: FakeClock) -> None:
    assert allowed(10, key="a") == 10
    assert allowed(10, key="b") == 10
    assert allowed(5, "burst", key="a") == 5


def test_memory_store_sweeps_expired_buckets(clock: FakeClock) -> None:
    store = MemoryStore(clock)
    store.SWEEP_EVERY = 10
    for i in range(9):
        store.decide(f"k{i}", 1_000_000, 1_000_000, 1, 0)
    clock.advance(2)
    store.decide("last", 1_000_000, 1_000_000, 1, 0)
    assert list(store._tats) == ["last"]


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(st.tuples(st.integers(0, 3_000_000), st.integers(1, 3)), max_size=60),
    burst=st.integers(1, 10),
)
def test_never_more_than_burst_plus_rate(steps: list[tuple[int, int]], burst: int) -> None:
    """Property: over any history, granted permits <= burst + elapsed / interval."""
    interval, now, tat, granted = 1_000_000, 0, None, 0
    for gap, cost in steps:
        now += gap
        new_tat, verdict = decide(tat, now, interval, interval * burst, cost, 0)
        if verdict.allowed:
            tat, granted = new_tat, granted + cost
            assert 0 <= verdict.remaining <= burst
        else:
            assert verdict.wait > 0
        assert granted <= burst + now // interval


def test_redis_real_short_period() -> None:
    """Real time on Redis: 5 per 0.5 s, burst 5."""
    with redis_limits(PRESETS={"fast": {"rate": "5/0.5s"}}):
        assert allowed(8, "fast") == 5
        refused = check("fast", "k")
        assert 0 < refused.retry_after <= 0.1
        time.sleep(refused.retry_after + 0.02)
        assert allowed(3, "fast") == 1
        time.sleep(0.6)
        assert allowed(8, "fast") == 5


def test_both_stores_agree(configure: Configure) -> None:
    configure(PRESETS={"slow": {"rate": "3/h", "burst": 2}})
    decisions = [check("slow", "same") for _ in range(3)]
    assert [d.allowed for d in decisions] == [True, True, False]
    assert [d.remaining for d in decisions] == [1, 0, 0]
    assert decisions[2].retry_after == pytest.approx(1200, abs=1)
    assert decisions[0].reset == pytest.approx(1200, abs=1)
