"""URLs (and the ASGI application) of the django-eventstream peer: ``/es/<channel>/``."""

from __future__ import annotations

import django_eventstream
from django.core.asgi import get_asgi_application
from django.urls import include, path

urlpatterns = [
    path("es/<channel>/", include(django_eventstream.urls), {"format-channels": ["{channel}"]}),
]


def application_factory() -> object:
    """Django's ASGI application, for ``uvicorn --factory``."""
    return get_asgi_application()
