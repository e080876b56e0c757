"""``@rate_limit("auth")`` for sync and async views, view methods and plain methods.

With a request among the arguments, a refusal is a 429 response and an allowed response
gets the rate limit fields; without one (a service method), the key comes from the
request context and a refusal raises :class:`~ratelimit.decision.RateLimited`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest

from .guard import aguard, finish, guard
from .keys import KeyFunc, request_key
from .limiter import acheck, check
from .presets import Preset

F = TypeVar("F", bound=Callable[..., Any])


def find_request(args: tuple[Any, ...]) -> HttpRequest | None:
    """The first ``HttpRequest`` (or DRF ``Request`` wrapping one) among ``args``."""
    for arg in args[:2]:
        if isinstance(arg, HttpRequest):
            return arg
        inner = getattr(arg, "_request", None)
        if isinstance(inner, HttpRequest):
            return inner
    return None


def rate_limit(
    *presets: str | Preset, key: KeyFunc | None = None, cost: int = 1
) -> Callable[[F], F]:
    """Limit the decorated view or method by ``presets`` (``key`` overrides their key)."""
    if not presets:
        raise TypeError("rate_limit() needs at least one preset")

    def decorate(func: F) -> F:
        if iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                request = find_request(args)
                if request is None:
                    k = None if key is None else request_key(key, None)
                    for preset in presets:
                        await acheck(preset, k, cost=cost, raise_exception=True)
                    return await func(*args, **kwargs)
                refused = await aguard(request, presets, key, cost)
                if refused is not None:
                    return refused
                return finish(request, await func(*args, **kwargs))

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            request = find_request(args)
            if request is None:
                k = None if key is None else request_key(key, None)
                for preset in presets:
                    check(preset, k, cost=cost, raise_exception=True)
                return func(*args, **kwargs)
            refused = guard(request, presets, key, cost)
            if refused is not None:
                return refused
            return finish(request, func(*args, **kwargs))

        return wrapper  # type: ignore[return-value]

    return decorate
