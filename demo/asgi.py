"""ASGI entry point of the demo project (HTTP through Django, WebSockets through Channels)."""

import os

from channels.routing import ProtocolTypeRouter
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings.dev")

application = ProtocolTypeRouter({"http": get_asgi_application()})
