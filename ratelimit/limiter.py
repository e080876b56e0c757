"""``check`` / ``acheck``: one decision for any code, with the failure policy applied.

A derived key (no ``key`` given) comes from the preset's key function and is prefixed
with the tenant; an explicit ``key`` names the bucket as-is. Each decision is counted in
the metrics and stored as ``rate_limit`` in the request context.
"""

from __future__ import annotations

import hashlib
import logging

from django.http import HttpRequest

from clusterkit import context

from . import gcra, metrics
from .conf import ratelimit_settings
from .decision import ALLOWED, DISABLED, FAILED_CLOSED, FAILED_OPEN, LIMITED, Decision, RateLimited
from .keys import request_key
from .presets import Preset, get_preset
from .stores import StoreUnavailable, get_store

logger = logging.getLogger("clusterkit.ratelimit")

MAX_KEY_LENGTH = 200
_US = 1_000_000


def resolve_key(preset: Preset, key: str | None, request: HttpRequest | None) -> str:
    """``key`` itself, or the tenant-prefixed key the preset's key function derives."""
    return key if key is not None else request_key(preset.key, request)


def bucket(preset: Preset, key: str) -> str:
    """The store key of ``key`` under ``preset`` (hashed when very long)."""
    name = f"{ratelimit_settings.KEY_PREFIX}{preset.name}:{key}"
    if len(name) > MAX_KEY_LENGTH:
        digest = hashlib.sha256(key.encode()).hexdigest()
        name = f"{ratelimit_settings.KEY_PREFIX}{preset.name}:#{digest}"
    return name


def _decided(preset: Preset, key: str, verdict: gcra.Verdict) -> Decision:
    decision = Decision(
        preset=preset.name,
        key=key,
        allowed=verdict.allowed,
        limit=preset.rate.limit,
        window=preset.rate.period,
        burst=preset.burst,
        remaining=verdict.remaining,
        retry_after=verdict.wait / _US,
        reset=verdict.reset / _US,
        outcome=ALLOWED if verdict.allowed else LIMITED,
    )
    metrics.count_decision(preset.name, decision.outcome)
    return decision


def _failed(preset: Preset, key: str, exc: StoreUnavailable) -> Decision:
    fail_open = ratelimit_settings.FAIL_OPEN if preset.fail_open is None else preset.fail_open
    outcome = FAILED_OPEN if fail_open else FAILED_CLOSED
    logger.warning(
        "Rate limit store unavailable for preset %r (%s): %s",
        preset.name,
        "failing open" if fail_open else "failing closed",
        exc,
    )
    metrics.count_store_error(preset.name)
    metrics.count_decision(preset.name, outcome)
    return Decision(
        preset=preset.name,
        key=key,
        allowed=fail_open,
        limit=preset.rate.limit,
        window=preset.rate.period,
        burst=preset.burst,
        remaining=0,
        retry_after=0.0 if fail_open else float(ratelimit_settings.FAILURE_RETRY_AFTER),
        reset=0.0,
        outcome=outcome,
    )


def _disabled(preset: Preset, key: str) -> Decision:
    return Decision(
        preset.name, key, True, preset.rate.limit, preset.rate.period, preset.burst,
        preset.burst, 0.0, 0.0, DISABLED,
    )  # fmt: skip


def _finish(decision: Decision, raise_exception: bool) -> Decision:
    context.update(rate_limit=decision)
    if raise_exception and not decision.allowed:
        raise RateLimited(decision)
    return decision


def _prepare(
    preset: str | Preset, key: str | None, request: HttpRequest | None, cost: int, max_wait: float
) -> tuple[Preset, str, tuple[str, int, int, int, int]]:
    """The preset, the key and the store arguments of one decision."""
    p = get_preset(preset)
    k = resolve_key(p, key, request)
    return p, k, (bucket(p, k), p.interval_us, p.tolerance_us, cost, int(max_wait * _US))


def take(
    preset: str | Preset,
    key: str | None = None,
    *,
    cost: int = 1,
    max_wait: float = 0.0,
    request: HttpRequest | None = None,
) -> Decision:
    """Take ``cost`` permits if they are available within ``max_wait`` seconds."""
    p, k, args = _prepare(preset, key, request, cost, max_wait)
    if not ratelimit_settings.ENABLED:
        return _disabled(p, k)
    try:
        verdict = get_store().decide(*args)
    except StoreUnavailable as exc:
        return _failed(p, k, exc)
    return _decided(p, k, verdict)


async def atake(
    preset: str | Preset,
    key: str | None = None,
    *,
    cost: int = 1,
    max_wait: float = 0.0,
    request: HttpRequest | None = None,
) -> Decision:
    """The async twin of :func:`take`."""
    p, k, args = _prepare(preset, key, request, cost, max_wait)
    if not ratelimit_settings.ENABLED:
        return _disabled(p, k)
    try:
        verdict = await get_store().adecide(*args)
    except StoreUnavailable as exc:
        return _failed(p, k, exc)
    return _decided(p, k, verdict)


def check(
    preset: str | Preset,
    key: str | None = None,
    *,
    cost: int = 1,
    request: HttpRequest | None = None,
    raise_exception: bool = False,
) -> Decision:
    """Decide now whether ``key`` may go on under ``preset``; raise `RateLimited` if asked."""
    return _finish(take(preset, key, cost=cost, request=request), raise_exception)


async def acheck(
    preset: str | Preset,
    key: str | None = None,
    *,
    cost: int = 1,
    request: HttpRequest | None = None,
    raise_exception: bool = False,
) -> Decision:
    """The async twin of :func:`check` (``redis.asyncio`` with the Redis store)."""
    return _finish(await atake(preset, key, cost=cost, request=request), raise_exception)
