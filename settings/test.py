"""Test settings: ``CLUSTERKIT_TEST_BACKEND=postgres`` (PostgreSQL + Redis) or ``embedded``.

Runner subprocesses started by the tests inherit the environment, including
``CLUSTERKIT_TEST_DB_NAME`` (the test database pytest-django created), so they talk to the
same database as the test process.
"""

import os

from .base import *  # noqa: F403
from .base import BASE_DIR

BACKEND = os.environ.get("CLUSTERKIT_TEST_BACKEND", "embedded")
DB_NAME = os.environ.get("CLUSTERKIT_TEST_DB_NAME")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
STREAMING: dict[str, object] = {}

if BACKEND == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": DB_NAME or "test",
            "USER": os.environ.get("PGUSER", "postgres"),
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "PORT": os.environ.get("PGPORT", "5432"),
            "TEST": {"NAME": DB_NAME or "test_clusterkit"},
            "CONN_HEALTH_CHECKS": True,
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        },
        "streaming": {  # as settings.prod: streaming fans out over Redis pub/sub
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        },
    }
    STREAMING = {"CHANNEL_LAYER": "streaming"}
    CACHES = {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": REDIS_URL}}
elif BACKEND == "embedded":
    sqlite_path = DB_NAME or str(BASE_DIR / "test-clusterkit.sqlite3")
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": sqlite_path,
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            "TEST": {"NAME": sqlite_path},
        }
    }
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    RATELIMIT = {**RATELIMIT, "STORE": "memory"}  # noqa: F405
else:
    raise RuntimeError(f"CLUSTERKIT_TEST_BACKEND must be postgres or embedded, not {BACKEND!r}")

INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]  # noqa: F405
ALLOWED_HOSTS = ["*"]
ASGI_APPLICATION = "tests.testapp.asgi.application"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CLUSTERKIT = {
    "EMBEDDED_RUNNER": False,
    "SHARD_LEASE_TTL": 3.0,
    "SHARD_LEASE_RENEW_INTERVAL": 0.5,
    "POLL_INTERVAL": 0.5,
}
