"""Middleware and decorator: 429 + Retry-After, RateLimit fields, keys, tenants, context."""

from __future__ import annotations

from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory, override_settings
from django.views import View

from clusterkit import context
from clusterkit.middleware import RequestContextMiddleware
from ratelimit import Decision, RateLimited, rate_limit
from ratelimit.middleware import RateLimitMiddleware

from .conftest import Configure

PRESETS = {
    "api": {"rate": "3/m"},
    "auth": {"rate": "2/15m"},
    "mutation": {"rate": "1/m", "burst": 1},
}
RULES = [{"path": r"^/api/", "preset": "api"}, ("^/api/items", ["api", "mutation"])]
seen: list[context.RequestContext] = []
rf = RequestFactory()


def view(request: HttpRequest) -> HttpResponse:
    seen.append(context.current())
    return HttpResponse("ok")


async def aview(request: HttpRequest) -> HttpResponse:
    seen.append(context.current())
    return HttpResponse("ok")


@rate_limit("auth")
def login(request: HttpRequest) -> HttpResponse:
    return HttpResponse("welcome")


@rate_limit("auth")
async def alogin(request: HttpRequest) -> HttpResponse:
    return HttpResponse("welcome")


class LoginView(View):
    @rate_limit("auth")
    def post(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("welcome")


class Mailer:
    @rate_limit("auth", key=lambda request: "mailer")
    def send(self, to: str) -> str:
        return to


def stack(inner: Any) -> Any:
    return RequestContextMiddleware(RateLimitMiddleware(inner))


@pytest.fixture(autouse=True)
def _limits(configure: Configure) -> None:
    seen.clear()
    configure(PRESETS=PRESETS, RULES=RULES)


def statuses(app: Any, n: int, path: str = "/api/x", **extra: Any) -> list[int]:
    return [app(rf.get(path, **extra)).status_code for _ in range(n)]


def test_middleware_limits_by_path_with_headers() -> None:
    app = stack(view)
    ok = app(rf.get("/api/x"))
    assert ok.status_code == 200
    assert ok["RateLimit-Policy"] == '"api";q=3;w=60'
    assert ok["RateLimit"] == '"api";r=2;t=20'
    assert "Retry-After" not in ok
    assert statuses(app, 3) == [200, 200, 429]
    refused = app(rf.get("/api/x"))
    assert refused.status_code == 429 and refused["Retry-After"] == "20"
    assert refused["RateLimit"] == '"api";r=0;t=60'
    assert len(seen) == 3
    assert isinstance(seen[0].rate_limit, Decision) and seen[0].rate_limit.preset == "api"


def test_unmatched_path_is_not_limited() -> None:
    assert statuses(stack(view), 10, "/other/") == [200] * 10
    assert "RateLimit" not in stack(view)(rf.get("/other/"))


def test_several_presets_and_methods() -> None:
    app = stack(view)
    first = app(rf.post("/api/items"))
    assert first["RateLimit-Policy"] == '"api";q=3;w=60, "mutation";q=1;w=60'
    assert app(rf.post("/api/items")).status_code == 429  # mutation: 1/m
    assert app(rf.get("/api/items")).status_code == 200  # GET is not a mutation


async def test_async_middleware() -> None:
    app = stack(aview)
    responses = [await app(rf.get("/api/x")) for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert responses[0]["RateLimit"] == '"api";r=2;t=20'
    assert responses[3]["Retry-After"] == "20"
    assert seen[0].rate_limit.allowed


def test_decorator_sync() -> None:
    app = RequestContextMiddleware(login)
    assert app(rf.get("/login")).status_code == 200  # GET does not count for auth
    responses = [app(rf.post("/login")) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert responses[0]["RateLimit-Policy"] == '"auth";q=2;w=900'
    assert responses[2]["Retry-After"] == "450"


async def test_decorator_async() -> None:
    app = RequestContextMiddleware(alogin)
    responses = [await app(rf.post("/login")) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert responses[1]["RateLimit"] == '"auth";r=0;t=900'


def test_decorator_on_view_method() -> None:
    app = RequestContextMiddleware(LoginView.as_view())
    assert [app(rf.post("/login")).status_code for _ in range(3)] == [200, 200, 429]


def test_decorator_on_plain_method_raises() -> None:
    mailer = Mailer()
    assert mailer.send("a") == "a" and mailer.send("b") == "b"
    with pytest.raises(RateLimited) as info:
        mailer.send("c")
    assert info.value.decision.key == "-:mailer"


def test_rate_limited_exception_becomes_429() -> None:
    def raising(request: HttpRequest) -> HttpResponse:
        from ratelimit import check

        check("mutation", "job", raise_exception=True)
        return HttpResponse("ok")

    mw = RateLimitMiddleware(raising)
    request = rf.get("/")
    assert mw(request).status_code == 200
    try:
        mw(rf.get("/"))
    except RateLimited as exc:
        response = mw.process_exception(request, exc)
    assert response is not None and response.status_code == 429
    assert response["Retry-After"] == "60"


def test_spoofed_forwarded_for_does_not_change_key() -> None:
    app = stack(view)
    codes = [
        app(rf.get("/api/x", REMOTE_ADDR="203.0.113.5", HTTP_X_FORWARDED_FOR=f"10.0.0.{i}"))
        .status_code
        for i in range(4)
    ]
    assert codes == [200, 200, 200, 429]


def test_forwarded_for_trusted_from_configured_proxy() -> None:
    app = stack(view)
    with override_settings(CLUSTERKIT={"TRUSTED_PROXIES": ["10.0.0.0/8"]}):
        for client in ["198.51.100.1", "198.51.100.2"]:
            codes = statuses(app, 4, REMOTE_ADDR="10.1.1.1", HTTP_X_FORWARDED_FOR=client)
            assert codes == [200, 200, 200, 429]
        assert seen[-1].rate_limit.key == "-:ip:198.51.100.2"


def tenant_from_host(request: HttpRequest) -> str:
    return request.get_host().split(".")[0]


def test_tenants_do_not_share_buckets() -> None:
    app = stack(view)
    resolver = f"{__name__}.tenant_from_host"
    with override_settings(CLUSTERKIT={"TENANT_RESOLVER": resolver}, ALLOWED_HOSTS=["*"]):
        assert statuses(app, 4, HTTP_HOST="acme.example.com") == [200, 200, 200, 429]
        assert statuses(app, 4, HTTP_HOST="globex.example.com") == [200, 200, 200, 429]
        assert seen[-1].rate_limit.key == "globex:ip:127.0.0.1"


def test_user_key_and_fallback_without_context_middleware() -> None:
    class User:
        is_authenticated = True
        pk = 42

    decorated = rate_limit("mfa")(view)
    request = rf.post("/mfa")
    request.user = User()  # type: ignore[attr-defined]
    assert decorated(request).status_code == 200
    assert seen[-1].rate_limit.key == "-:user:42"
    anonymous = rf.post("/mfa", REMOTE_ADDR="192.0.2.7")
    decorated(anonymous)
    assert seen[-1].rate_limit.key == "-:ip:192.0.2.7"  # client_ip(request) fallback


def test_view_rules(configure: Configure) -> None:
    configure(PRESETS=PRESETS, RULES=[{"view": "admin:login", "preset": "auth"}])
    app = stack(view)
    assert [app(rf.post("/admin/login/")).status_code for _ in range(3)] == [200, 200, 429]
    assert app(rf.post("/admin/logout/")).status_code == 200


def test_disabled() -> None:
    with override_settings(RATELIMIT={"ENABLED": False, "RULES": RULES}):
        assert statuses(stack(view), 10) == [200] * 10
