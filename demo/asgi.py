"""ASGI entry point of the demo project: Django for HTTP, the streams through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings.dev")

django_app = get_asgi_application()  # sets Django up before the streaming routes import models

from streaming.routing import streaming_application  # noqa: E402

application = streaming_application(django_app)
