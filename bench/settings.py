"""Settings of the benchmark runs: ``DJANGO_SETTINGS_MODULE=bench.settings``.

Self-contained (no environment variables needed, though ``BENCH_PG_*`` and
``BENCH_REDIS_URL`` override the defaults): PostgreSQL at 127.0.0.1:5432 as ``postgres``
on a dedicated database ``clusterkit_bench`` (``bench.core`` creates and migrates it),
Redis at 127.0.0.1:6379 db 14, as in ``settings.prod``.

The apps are the core and ``bench`` only, not the demo project's: a runner hosts every
installed app's entities, so another app's entity types (or a half-edited
``entities.py``) would otherwise be part of what is measured.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "clusterkit-bench-insecure-key"
DEBUG = False  # DEBUG=True would record every query in memory
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "clusterkit",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "bench.apps.BenchConfig",
]
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

PG_HOST = os.environ.get("BENCH_PG_HOST", "127.0.0.1")
PG_PORT = os.environ.get("BENCH_PG_PORT", "5432")
PG_USER = os.environ.get("BENCH_PG_USER", "postgres")
PG_PASSWORD = os.environ.get("BENCH_PG_PASSWORD", "")
DB_NAME = "clusterkit_bench"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": DB_NAME,
        "USER": PG_USER,
        "PASSWORD": PG_PASSWORD,
        "HOST": PG_HOST,
        "PORT": PG_PORT,
        "CONN_MAX_AGE": None,  # keep connections: a reconnect per query is not what is measured
        "CONN_HEALTH_CHECKS": False,  # no extra round trip per request cycle
    }
}

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL]},
    }
}
CACHES = {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": REDIS_URL}}

CLUSTERKIT = {
    # Runners are the subprocesses the benchmark starts; no runner inside the callers.
    "EMBEDDED_RUNNER": False,
    # Everything else is the core's defaults, spelled out so a run documents what it
    # measured: claim up to 1,024 messages per UPDATE … RETURNING, up to 20,000 in
    # flight per runner (the 100,000-entity memory run streams through that window),
    # group-commit replies every 2 ms (or at once past 256 pending), 300 shards.
    "CLAIM_BATCH_SIZE": 1024,
    "MAX_IN_FLIGHT": 20000,
    "COMMIT_INTERVAL": 0.0,
    "SHARDS_PER_GROUP": 300,
    # A generous call timeout: a benchmark step that stalls fails loudly, not silently.
    "CALL_TIMEOUT": 30.0,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"clusterkit": {"handlers": ["console"], "level": "WARNING"}},
}
