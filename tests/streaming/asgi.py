"""ASGI application of the streaming test servers: SSE/WebSocket routes, then Django."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.streaming.settings")
django_app = get_asgi_application()

from streaming.routing import streaming_application  # noqa: E402

application = streaming_application(django_app)

if os.environ.get("CK_STREAMING_RUNNER") == "1":  # host the stream entities in this server
    from clusterkit.embedded import ensure_started

    ensure_started()
