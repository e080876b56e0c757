"""Settings shared by every deployment of the demo project."""

from pathlib import Path

import django

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "clusterkit-demo-insecure-key"  # overridden in prod
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    # clusterkit before channels so that its ``runworker`` takes precedence.
    "clusterkit",
    "jobs",
    "streaming",
    "ratelimit",
    "demo",
    "django_prometheus",
    "daphne",
    "channels",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]
if django.VERSION < (6, 0):  # the Tasks API comes from the backport
    INSTALLED_APPS.append("django_tasks")

TASKS = {
    "default": {
        "BACKEND": "jobs.backends.ClusterTaskBackend",
        "QUEUES": ["default", "emails"],
        "OPTIONS": {"max_attempts": 3},
    }
}

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "clusterkit.middleware.RequestContextMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "ratelimit.middleware.RateLimitMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

# Rate limits of the demo project: the presets apply to the login page and the API.
RATELIMIT: dict[str, object] = {
    "RULES": [
        {"path": r"^/admin/login/", "preset": "auth"},
        {"path": r"^/api/", "preset": "api"},
    ]
}

ROOT_URLCONF = "demo.urls"
ASGI_APPLICATION = "demo.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Every record of the console handler names its request, tenant, trace, runner, shard and
# entity (clusterkit.logfilter); runners log their lifecycle at INFO.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "clusterkit.logfilter.ContextFilter"}},
    "formatters": {
        "context": {
            "()": "clusterkit.logfilter.ContextFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        }
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["context"],
            "formatter": "context",
        }
    },
    "loggers": {"clusterkit": {"handlers": ["console"], "level": "WARNING"}},
}
