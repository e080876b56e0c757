"""The IETF ``RateLimit`` / ``RateLimit-Policy`` fields (draft-ietf-httpapi-ratelimit-headers-11).

``RateLimit-Policy: "api";q=100;w=60`` announces each preset's quota per window and
``RateLimit: "api";r=50;t=30`` how many requests remain and the seconds until the bucket
is full again; a 429 adds ``Retry-After``. Decisions of one request are kept on it so
that the middleware and the decorator can both contribute.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from django.http import HttpRequest, HttpResponse

from .conf import ratelimit_settings
from .decision import ALLOWED, LIMITED, Decision

_ATTR = "_ratelimit_decisions"


def record(request: HttpRequest, decision: Decision) -> None:
    """Remember ``decision`` on ``request`` (one per preset, the latest wins)."""
    decisions: dict[str, Decision] = request.__dict__.setdefault(_ATTR, {})
    decisions[decision.preset] = decision


def recorded(request: HttpRequest) -> list[Decision]:
    """The decisions made for ``request`` so far."""
    return list(request.__dict__.get(_ATTR, {}).values())


def policy_item(decision: Decision) -> str:
    """One item of ``RateLimit-Policy``: the quota ``q`` per window ``w`` seconds."""
    return f'"{decision.preset}";q={decision.limit};w={math.ceil(decision.window)}'


def limit_item(decision: Decision) -> str:
    """One item of ``RateLimit``: ``r`` remaining, full again in ``t`` seconds."""
    return f'"{decision.preset}";r={decision.remaining};t={math.ceil(decision.reset)}'


def retry_after(decisions: Iterable[Decision]) -> int | None:
    """Whole seconds until every refusal among ``decisions`` is over (at least 1)."""
    waits = [d.retry_after for d in decisions if not d.allowed]
    return max(1, math.ceil(max(waits))) if waits else None


def apply(response: HttpResponse, decisions: Iterable[Decision]) -> HttpResponse:
    """Set the rate limit fields of ``decisions`` on ``response`` (when the store answered)."""
    decisions = list(decisions)
    known = [d for d in decisions if d.outcome in (ALLOWED, LIMITED)]
    if known and ratelimit_settings.HEADERS:
        response["RateLimit-Policy"] = ", ".join(policy_item(d) for d in known)
        response["RateLimit"] = ", ".join(limit_item(d) for d in known)
    wait = retry_after(decisions)
    if wait is not None and response.status_code in (429, 503):
        response["Retry-After"] = str(wait)
    return response


def too_many_requests(decisions: Iterable[Decision]) -> HttpResponse:
    """The 429 response for a refused request, with ``Retry-After`` and the fields above."""
    decisions = list(decisions)
    response = HttpResponse(
        f"Too many requests; retry after {retry_after(decisions) or 1} seconds.\n",
        status=429,
        content_type="text/plain; charset=utf-8",
    )
    return apply(response, decisions)
