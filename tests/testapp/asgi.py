"""ASGI application of the test project: HTTP plus a Channels worker consumer."""

from __future__ import annotations

from typing import Any

from channels.consumer import AsyncConsumer
from channels.routing import ChannelNameRouter, ProtocolTypeRouter
from django.core.asgi import get_asgi_application
from django.core.cache import cache


class EchoConsumer(AsyncConsumer):
    """Stores what it receives in the cache, so a test can see a worker consumed it."""

    async def echo(self, message: dict[str, Any]) -> None:
        await cache.aset(f"echo:{message['key']}", message["value"], 60)


application = ProtocolTypeRouter(
    {
        "http": get_asgi_application(),
        "channel": ChannelNameRouter({"clusterkit-echo": EchoConsumer.as_asgi()}),
    }
)
