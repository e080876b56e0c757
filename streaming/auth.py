"""Who is asking, for which tenant, and may they read a channel.

The tenant of a Channels scope is resolved the way
:class:`clusterkit.middleware.RequestContextMiddleware` resolves it for a Django
request: ``STREAMING["TENANT_RESOLVER"]`` (or, when unset, the same
``CLUSTERKIT["TENANT_RESOLVER"]``) is called with a Django request built from the
scope (headers, host, path, query string, ``user`` and ``session`` when the Channels
auth middleware put them there). It never comes from the URL's channel part.
"""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest
from django.utils.module_loading import import_string

from clusterkit import context
from clusterkit.conf import cluster_settings

from .conf import streaming_settings

Scope = MutableMapping[str, Any]
TENANT_KEY = "streaming_tenant"


def request_for_scope(scope: Scope) -> HttpRequest:
    """A Django request for an HTTP or WebSocket scope (no body), for resolvers and hooks."""
    http_scope = {**scope, "type": "http", "method": scope.get("method") or "GET"}
    http_scope.setdefault("path", "/")
    request = ASGIRequest(http_scope, io.BytesIO())
    request.user = scope.get("user") or AnonymousUser()
    if scope.get("session") is not None:
        request.session = scope["session"]
    return request


def _resolver() -> Callable[[HttpRequest], object] | None:
    resolver: Any = streaming_settings.TENANT_RESOLVER or cluster_settings.TENANT_RESOLVER
    if isinstance(resolver, str):
        resolver = import_string(resolver)
    return resolver  # type: ignore[no-any-return]


def resolve_tenant(scope: Scope) -> str:
    """The tenant of ``scope`` (sync: a resolver may read the database)."""
    cached = scope.get(TENANT_KEY)
    if isinstance(cached, str):
        return cached
    resolver = _resolver()
    tenant = context.valid_tenant(resolver(request_for_scope(scope))) if resolver else None
    return tenant or str(streaming_settings.DEFAULT_TENANT)


async def aresolve_tenant(scope: Scope) -> str:
    """Async :func:`resolve_tenant`."""
    cached = scope.get(TENANT_KEY)
    if isinstance(cached, str):
        return cached
    return await database_sync_to_async(resolve_tenant)(scope)


def authenticated(user: Any, tenant: str, channel: str) -> bool:
    """The default ``AUTHORIZE`` hook: any authenticated user of the tenant.

    The tenant is the one resolved for the request, so "of the tenant" is whatever
    the tenant resolver decides; projects with finer rules set their own hook.
    """
    return bool(getattr(user, "is_authenticated", False))


def allow_all(user: Any, tenant: str, channel: str) -> bool:
    """An ``AUTHORIZE`` hook for public streams: everyone may read every channel."""
    return True


def _hook() -> Callable[[Any, str, str], bool]:
    hook: Any = streaming_settings.AUTHORIZE
    if isinstance(hook, str):
        hook = import_string(hook)
    return hook  # type: ignore[no-any-return]


async def authorize(scope: Scope, tenant: str, channel: str) -> bool:
    """Whether the scope's user may read ``channel`` of ``tenant`` (the hook may use the DB)."""
    user = scope.get("user") or AnonymousUser()
    hook = _hook()

    def check() -> bool:
        return bool(hook(user, tenant, channel))

    return await database_sync_to_async(check)()


class StreamingMiddleware:
    """ASGI middleware: resolves the tenant once per connection into the scope.

    Put it inside Channels' ``AuthMiddlewareStack`` so the resolver sees the user;
    it also runs the inner application with the tenant in :mod:`clusterkit.context`.
    """

    def __init__(self, inner: Callable[..., Awaitable[None]]) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        scope = dict(scope)
        scope.pop(TENANT_KEY, None)  # never trust a value from outside
        tenant = await database_sync_to_async(resolve_tenant)(scope)
        scope[TENANT_KEY] = tenant
        with context.use(context.current().replace(tenant_id=tenant)):
            await self.inner(scope, receive, send)
