"""RequestContextMiddleware: request ids, client IPs behind proxies, tenants."""

from __future__ import annotations

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory, override_settings

from clusterkit import context
from clusterkit.middleware import RequestContextMiddleware

seen: list[context.RequestContext] = []


def view(request: HttpRequest) -> HttpResponse:
    seen.append(context.current())
    return HttpResponse("ok")


async def aview(request: HttpRequest) -> HttpResponse:
    seen.append(context.current())
    return HttpResponse("ok")


def tenant_from_host(request: HttpRequest) -> str:
    return request.get_host().split(".")[0]


@pytest.fixture(autouse=True)
def _clear() -> None:
    seen.clear()


def test_generates_and_echoes_request_id() -> None:
    response = RequestContextMiddleware(view)(RequestFactory().get("/"))
    assert len(response["X-Request-ID"]) == 32
    assert seen[0].request_id == response["X-Request-ID"]
    assert context.current().request_id is None  # reset after the request


def test_keeps_valid_request_id_and_replaces_malformed() -> None:
    mw = RequestContextMiddleware(view)
    assert mw(RequestFactory().get("/", HTTP_X_REQUEST_ID="abc-123"))["X-Request-ID"] == "abc-123"
    bad = mw(RequestFactory().get("/", HTTP_X_REQUEST_ID="a b\n<script>"))["X-Request-ID"]
    assert bad != "a b\n<script>" and len(bad) == 32


async def test_async_view_gets_context() -> None:
    response = await RequestContextMiddleware(aview)(  # type: ignore[misc]
        RequestFactory().get("/", HTTP_X_REQUEST_ID="r-1")
    )
    assert response["X-Request-ID"] == "r-1"
    assert seen[0].request_id == "r-1"


def test_forwarded_for_ignored_from_untrusted_peer() -> None:
    req = RequestFactory().get("/", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="10.9.9.9")
    RequestContextMiddleware(view)(req)
    assert seen[0].ip_address == "203.0.113.9"


@override_settings(CLUSTERKIT={"TRUSTED_PROXIES": ["127.0.0.1", "10.0.0.0/8"]})
def test_forwarded_for_from_trusted_proxies() -> None:
    req = RequestFactory().get(
        "/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.7, 10.1.2.3"
    )
    RequestContextMiddleware(view)(req)
    assert seen[0].ip_address == "198.51.100.7"
    spoof = RequestFactory().get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="garbage")
    RequestContextMiddleware(view)(spoof)
    assert seen[1].ip_address == "127.0.0.1"


@override_settings(CLUSTERKIT={"TENANT_RESOLVER": "tests.core.test_middleware.tenant_from_host"})
def test_tenant_resolver() -> None:
    RequestContextMiddleware(view)(RequestFactory().get("/", HTTP_HOST="acme.localhost"))
    assert seen[0].tenant_id == "acme"


def test_traceparent_propagates_into_headers() -> None:
    parent = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"
    ctx = context.RequestContext(request_id="r", tenant_id="t", traceparent=parent)
    headers = context.to_headers(ctx)
    child = context.from_headers(headers, None)
    assert child.request_id == "r" and child.tenant_id == "t"
    assert child.traceparent is not None and child.traceparent.split("-")[1] == "a" * 32
    assert child.traceparent != parent
    assert context.from_headers({"traceparent": "junk", "tenant_id": 5}, None).tenant_id is None
