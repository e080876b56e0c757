"""``RequestContextMiddleware``: fills :mod:`clusterkit.context` for every request."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string

from . import context
from .conf import cluster_settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_networks() -> list[Network]:
    """``CLUSTERKIT["TRUSTED_PROXIES"]`` parsed into networks (addresses or CIDRs)."""
    return [ipaddress.ip_network(p, strict=False) for p in cluster_settings.TRUSTED_PROXIES]


def _is_trusted(address: str, networks: list[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: ``REMOTE_ADDR``, or ``X-Forwarded-For`` behind trusted proxies.

    The forwarded chain is read from the right, skipping trusted proxies; the first
    address that is not a trusted proxy is the client. A header sent by an untrusted
    peer is ignored, so it cannot be spoofed.
    """
    remote = request.META.get("REMOTE_ADDR") or None
    networks = trusted_networks()
    if not remote or not networks or not _is_trusted(remote, networks):
        return remote
    chain = [p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    for hop in reversed([p for p in chain if p]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return remote
        if not _is_trusted(hop, networks):
            return hop
    return remote


def resolve_tenant(request: HttpRequest) -> str | None:
    """The tenant from ``CLUSTERKIT["TENANT_RESOLVER"]`` (a callable or its import path)."""
    resolver: Any = cluster_settings.TENANT_RESOLVER
    if resolver is None:
        return None
    if isinstance(resolver, str):
        resolver = import_string(resolver)
    return context.valid_tenant(resolver(request))


def build_context(request: HttpRequest) -> context.RequestContext:
    """The :class:`~clusterkit.context.RequestContext` of ``request``."""
    header = "HTTP_" + cluster_settings.REQUEST_ID_HEADER.upper().replace("-", "_")
    request_id = context.valid_request_id(request.META.get(header)) or uuid.uuid4().hex
    session = getattr(request, "session", None)
    return context.RequestContext(
        request_id=request_id,
        tenant_id=resolve_tenant(request),
        ip_address=client_ip(request),
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:512] or None,
        session=getattr(session, "session_key", None),
        traceparent=context.valid_traceparent(request.META.get("HTTP_TRACEPARENT")),
        tracestate=request.META.get("HTTP_TRACESTATE") or None,
    )


class RequestContextMiddleware:
    """Sets the request context for the view and echoes the request id in the response."""

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
        ctx = build_context(request)
        with context.use(ctx):
            response: HttpResponse = self.get_response(request)
        response[cluster_settings.REQUEST_ID_HEADER] = ctx.request_id or ""
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        ctx = build_context(request)
        with context.use(ctx):
            response: HttpResponse = await self.get_response(request)
        response[cluster_settings.REQUEST_ID_HEADER] = ctx.request_id or ""
        return response
