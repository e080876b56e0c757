"""The durable limiter: take a permit and learn how long to wait, instead of a refusal.

Meant for workflows: the caller reserves a future slot in the same GCRA bucket (same
store, same presets) and turns the returned delay into a durable sleep, so a burst of
workflow steps is spread out at the preset's rate rather than failed.
"""

from __future__ import annotations

from .decision import FAILED_OPEN, Decision, RateLimited
from .limiter import atake, take
from .presets import Preset

UNBOUNDED = 10 * 365 * 86400.0  # "any delay": ten years


def _delay(decision: Decision) -> float:
    if decision.outcome == FAILED_OPEN:
        return 0.0
    if not decision.allowed:
        raise RateLimited(decision)
    return decision.retry_after


def permit_delay(
    preset: str | Preset, key: str | None = None, *, cost: int = 1, max_delay: float | None = None
) -> float:
    """Seconds to wait before using the permit just taken (0.0: go now).

    Raises :class:`RateLimited` when the delay would exceed ``max_delay`` (nothing is
    taken then) or when the store is down and the preset fails closed; a preset that
    fails open returns 0.0.
    """
    d = take(preset, key, cost=cost, max_wait=UNBOUNDED if max_delay is None else max_delay)
    return _delay(d)


async def apermit_delay(
    preset: str | Preset, key: str | None = None, *, cost: int = 1, max_delay: float | None = None
) -> float:
    """The async twin of :func:`permit_delay`."""
    d = await atake(preset, key, cost=cost, max_wait=UNBOUNDED if max_delay is None else max_delay)
    return _delay(d)
