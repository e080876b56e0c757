"""Checking a request against presets: shared by the middleware and the decorator."""

from __future__ import annotations

from collections.abc import Iterable

from django.http import HttpRequest, HttpResponse

from . import headers
from .keys import KeyFunc, request_key
from .limiter import acheck, check
from .presets import Preset, get_preset


def _applicable(
    request: HttpRequest, names: Iterable[str | Preset], key: KeyFunc | None
) -> list[tuple[Preset, str | None]]:
    """The presets that count this request's method, with the key override if any."""
    found = []
    for name in names:
        preset = get_preset(name)
        if preset.applies_to(request.method):
            found.append((preset, None if key is None else request_key(key, request)))
    return found


def _refusal(request: HttpRequest) -> HttpResponse | None:
    decisions = headers.recorded(request)
    if any(not d.allowed for d in decisions):
        return headers.too_many_requests(decisions)
    return None


def guard(
    request: HttpRequest,
    names: Iterable[str | Preset],
    key: KeyFunc | None = None,
    cost: int = 1,
) -> HttpResponse | None:
    """Check ``request`` against each preset; the 429 response if one refuses it."""
    for preset, k in _applicable(request, names, key):
        headers.record(request, check(preset, k, cost=cost, request=request))
    return _refusal(request)


async def aguard(
    request: HttpRequest,
    names: Iterable[str | Preset],
    key: KeyFunc | None = None,
    cost: int = 1,
) -> HttpResponse | None:
    """The async twin of :func:`guard`."""
    for preset, k in _applicable(request, names, key):
        headers.record(request, await acheck(preset, k, cost=cost, request=request))
    return _refusal(request)


def finish(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """Add the rate limit fields of every decision made for ``request`` to ``response``."""
    return headers.apply(response, headers.recorded(request))
