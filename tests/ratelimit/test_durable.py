"""The durable limiter returns delays that spread permits at the preset's rate."""

from __future__ import annotations

import pytest

from ratelimit import RateLimited, apermit_delay, check, permit_delay

from .conftest import Configure, FakeClock


def test_delays_follow_the_rate(configure: Configure, backend: str) -> None:
    configure(PRESETS={"steps": {"rate": "2/h", "burst": 2}})
    delays = [permit_delay("steps", "wf") for _ in range(5)]
    assert delays[:2] == [0.0, 0.0]
    assert delays[2:] == pytest.approx([1800, 3600, 5400], abs=1)
    assert not check("steps", "wf").allowed  # reserved slots count against check too


async def test_max_delay_refuses_without_taking(configure: Configure) -> None:
    configure(PRESETS={"steps": {"rate": "1/h", "burst": 1}})
    assert await apermit_delay("steps", "wf") == 0.0
    with pytest.raises(RateLimited) as info:
        await apermit_delay("steps", "wf", max_delay=60)
    assert info.value.decision.retry_after == pytest.approx(3600, abs=1)
    assert await apermit_delay("steps", "wf", max_delay=3600) == pytest.approx(3600, abs=1)


def test_delay_shrinks_as_time_passes(clock: FakeClock, configure: Configure, backend: str) -> None:
    if backend != "memory":
        pytest.skip("simulated time needs the in-process store")
    configure(PRESETS={"steps": {"rate": "1/m", "burst": 1}})
    assert permit_delay("steps", "wf") == 0.0
    clock.advance(45)
    assert permit_delay("steps", "wf") == pytest.approx(15)
