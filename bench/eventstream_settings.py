"""Settings of the django-eventstream peer of the streaming benchmark.

django-eventstream 5 as its documentation sets it up for several processes: fanned out
between processes through Redis pub/sub (``EVENTSTREAM_REDIS``, db 12), served as Django
ASGI views by uvicorn; with ``BENCH_ES_STORAGE=1`` events are also stored by
``DjangoModelStorage`` (so a client can resume) in its own database
``es_bench_streaming`` on the same PostgreSQL. Stored, every subscriber reads the
store on every wake-up from a thread of its own request, holding a database connection
for as long as it streams: PostgreSQL's ``max_connections`` bounds its subscribers.
"""

from __future__ import annotations

import os

SECRET_KEY = "eventstream-bench-insecure-key"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django_eventstream",
]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "bench.eventstream_urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "es_bench_streaming",
        "USER": os.environ.get("BENCH_PG_USER", "postgres"),
        "HOST": os.environ.get("BENCH_PG_HOST", "127.0.0.1"),
        "PORT": os.environ.get("BENCH_PG_PORT", "5432"),
        "CONN_MAX_AGE": None,
    }
}
if os.environ.get("BENCH_ES_STORAGE") == "1":
    EVENTSTREAM_STORAGE_CLASS = "django_eventstream.storage.DjangoModelStorage"
EVENTSTREAM_REDIS = {"host": "127.0.0.1", "port": 6379, "db": 12}
