"""Fixtures: the limiter on the in-process store (fake clock) and on real Redis (db 15)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from django.conf import settings
from django.test import override_settings

from ratelimit import stores
from ratelimit.stores import MemoryStore

REDIS_URL = "redis://127.0.0.1:6379/15"
Configure = Callable[..., None]


class FakeClock:
    """A clock the test moves by hand (seconds)."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def redis_caches(url: str = REDIS_URL, **options: Any) -> dict[str, Any]:
    """CACHES with an extra django-redis alias ``ratelimit`` (the default cache untouched)."""
    cache: dict[str, Any] = {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": url}
    if options:
        cache["OPTIONS"] = options
    return {**settings.CACHES, "ratelimit": cache}


@contextlib.contextmanager
def redis_limits(url: str = REDIS_URL, **ratelimit: Any) -> Iterator[str]:
    """Settings for the Redis store under a fresh key prefix; the keys are deleted after."""
    prefix = f"test-rl-{uuid.uuid4().hex[:12]}:"
    config = {"STORE": "redis", "CACHE": "ratelimit", "KEY_PREFIX": prefix, **ratelimit}
    with override_settings(CACHES=redis_caches(url), RATELIMIT=config):
        try:
            yield prefix
        finally:
            with contextlib.suppress(redis.RedisError):
                client = redis.Redis.from_url(url)
                keys = list(client.scan_iter(match=prefix + "*"))
                if keys:
                    client.delete(*keys)
                client.close()


@pytest.fixture(autouse=True)
def _fresh_memory_store() -> None:
    """The process-wide in-process store starts empty in every test."""
    stores._memory.clear()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", "redis"])
def configure(request: pytest.FixtureRequest, clock: FakeClock) -> Iterator[Configure]:
    """``configure(**RATELIMIT)`` applies settings on the store of this parametrization."""
    stack = contextlib.ExitStack()

    def apply(**ratelimit: Any) -> None:
        if request.param == "memory":
            stack.enter_context(
                override_settings(RATELIMIT={"STORE": MemoryStore(clock), **ratelimit})
            )
        else:
            stack.enter_context(redis_limits(**ratelimit))

    with stack:
        yield apply


@pytest.fixture
def backend(configure: Configure, request: pytest.FixtureRequest) -> str:
    """The name of the store under test (``memory`` or ``redis``)."""
    return str(request.node.callspec.params["configure"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def throwaway_redis() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A private redis-server (never the shared one), killed at the end."""
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.05)
    client.close()
    try:
        yield url, proc
    finally:
        proc.kill()
        proc.wait()
