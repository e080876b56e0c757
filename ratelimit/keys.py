"""Key functions: which bucket a request counts against (always within its tenant)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest

from clusterkit import context

KeyFunc = Callable[[HttpRequest | None], str | None]


def client_address(request: HttpRequest | None) -> str:
    """The client IP from the request context, else from the request itself (proxy-aware)."""
    ip = context.current().ip_address
    if ip is None and request is not None:
        from clusterkit.middleware import client_ip

        ip = client_ip(request)
    return ip or "-"


def by_ip(request: HttpRequest | None) -> str:
    """One bucket per client IP."""
    return "ip:" + client_address(request)


def by_user(request: HttpRequest | None) -> str:
    """One bucket per authenticated user; anonymous requests fall back to their IP."""
    user: Any = getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        return f"user:{user.pk}"
    return by_ip(request)


def by_tenant(request: HttpRequest | None) -> str:
    """One bucket for the whole tenant."""
    return "all"


BUILTIN: dict[str, KeyFunc] = {"ip": by_ip, "user": by_user, "tenant": by_tenant}


def request_key(func: KeyFunc, request: HttpRequest | None) -> str:
    """``func``'s key prefixed with the tenant, so that tenants never share a bucket."""
    tenant = context.current().tenant_id or "-"
    return f"{tenant}:{func(request) or '-'}"
