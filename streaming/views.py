"""The demo page: a plain ``EventSource`` on a channel, and a form that publishes to it."""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from clusterkit.errors import InvalidPayload

from .api import publish


def demo(request: HttpRequest) -> HttpResponse:
    """The live stream page of ``?channel=`` (default ``demo``)."""
    channel = request.GET.get("channel", "demo")
    return render(request, "streaming/demo.html", {"channel": channel})


@require_POST
def demo_publish(request: HttpRequest) -> HttpResponse:
    """Publish ``{"channel", "event", "data"}`` (staff only) to the request's tenant."""
    if not getattr(request.user, "is_staff", False):
        return JsonResponse({"error": "forbidden"}, status=403)
    try:
        body = json.loads(request.body or b"{}")
        seq = publish(body.get("channel", "demo"), body.get("event", "message"),
                      body.get("data"), wait=True)
    except (ValueError, InvalidPayload) as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse({"seq": seq})
