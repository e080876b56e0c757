"""ASGI routes of the streaming endpoints, for a project's ``asgi.py``.

::

    from streaming.routing import streaming_application
    application = streaming_application(get_asgi_application())

or mount the pieces yourself: ``http_urlpatterns`` (SSE) go before the Django app in
the ``"http"`` router and ``websocket_urlpatterns`` in the ``"websocket"`` one, both
wrapped in ``AuthMiddlewareStack(StreamingMiddleware(...))``.
"""

from __future__ import annotations

from typing import Any

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from django.urls import re_path

from .auth import StreamingMiddleware
from .consumers import EventStreamConsumer, StreamSocketConsumer

CHANNEL = r"(?P<channel>.+?)"  # validated by the consumer (400), not by the route

http_urlpatterns = [re_path(rf"^streams/{CHANNEL}/events/?$", EventStreamConsumer.as_asgi())]
websocket_urlpatterns = [re_path(r"^streams/ws/?$", StreamSocketConsumer.as_asgi())]


def streaming_application(django_app: Any, extra: dict[str, Any] | None = None) -> Any:
    """A ``ProtocolTypeRouter``: SSE and WebSocket streams, everything else to ``django_app``."""
    return ProtocolTypeRouter(
        {
            "http": AuthMiddlewareStack(
                StreamingMiddleware(
                    URLRouter([*http_urlpatterns, re_path(r"", django_app)])
                )
            ),
            "websocket": AuthMiddlewareStack(
                StreamingMiddleware(URLRouter(websocket_urlpatterns))
            ),
            **(extra or {}),
        }
    )
