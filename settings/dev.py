"""The embedded default: SQLite, in-memory channel layer, local-memory cache.

One process hosts the web app and a runner (``CLUSTERKIT["EMBEDDED_RUNNER"]``), so nothing
but Python packages is needed.
"""

import os

from .base import *  # noqa: F403
from .base import BASE_DIR

DEBUG = True

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("CLUSTERKIT_SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }
}
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CLUSTERKIT = {"EMBEDDED_RUNNER": True}
# One process: per-process rate limits are what we want here.
RATELIMIT = {**RATELIMIT, "STORE": "memory"}  # noqa: F405
