"""Scaled out: PostgreSQL and Redis, configured from environment variables.

``DATABASE_URL`` (``postgres://user:pass@host:port/name``), ``REDIS_URL``
(``redis://host:port/db``), ``SECRET_KEY``, ``ALLOWED_HOSTS`` (comma separated) and
``DEBUG`` (``1`` to enable).
"""

import os
from urllib.parse import unquote, urlparse

from .base import *  # noqa: F403


def database_from_url(url: str) -> dict[str, object]:
    """Turn a ``postgres://`` URL into a Django ``DATABASES`` entry."""
    parts = urlparse(url)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise ValueError(f"DATABASE_URL must be a postgres:// URL, not {parts.scheme!r}")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")) or "postgres",
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }


SECRET_KEY = os.environ.get("SECRET_KEY", SECRET_KEY)  # noqa: F405
DEBUG = os.environ.get("DEBUG", "") == "1"
ALLOWED_HOSTS = os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")

DATABASES = {
    "default": database_from_url(
        os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    )
}
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL]},
    },
    # Streaming fan-out: one PUBLISH per event and process (gaps are filled from the log).
    "streaming": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL]},
    },
}
STREAMING = {"CHANNEL_LAYER": "streaming"}
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        # A hung Redis must not hang requests: rate limits then follow their failure policy.
        "OPTIONS": {"SOCKET_TIMEOUT": 0.5, "SOCKET_CONNECT_TIMEOUT": 0.5},
    }
}

CLUSTERKIT = {"EMBEDDED_RUNNER": False}
