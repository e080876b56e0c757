"""``RateLimitMiddleware``: applies ``RATELIMIT["RULES"]`` and turns ``RateLimited`` into 429.

Place it after ``clusterkit.middleware.RequestContextMiddleware`` (it keys on the client IP
and tenant of the request context) and after ``AuthenticationMiddleware`` if a preset keys
on the user.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse

from . import headers
from .decision import RateLimited
from .guard import aguard, finish, guard
from .rules import presets_for


class RateLimitMiddleware:
    """Checks every request against the presets its rules select; adds the headers."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self.is_async:
            return self.__acall__(request)
        refused = guard(request, presets_for(request))
        if refused is not None:
            return refused
        return finish(request, self.get_response(request))

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        refused = await aguard(request, presets_for(request))
        if refused is not None:
            return refused
        return finish(request, await self.get_response(request))

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """A :class:`RateLimited` raised by any code below becomes a 429 response."""
        if isinstance(exception, RateLimited):
            headers.record(request, exception.decision)
            return headers.too_many_requests(headers.recorded(request))
        return None
