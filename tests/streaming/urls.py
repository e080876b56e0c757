"""URLs of the streaming test servers: the demo page and an open publish endpoint."""

import json

from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

import streaming


@csrf_exempt
def publish(request: HttpRequest) -> JsonResponse:
    """Publish ``{"channel", "event", "data", "tenant"}`` (test servers only)."""
    body = json.loads(request.body)
    seq = streaming.publish(body["channel"], body["event"], body.get("data"),
                            tenant=body.get("tenant"), wait=body.get("wait", False))
    return JsonResponse({"seq": seq})


urlpatterns = [path("", include("streaming.urls")), path("test/publish/", publish)]
