"""Django URLs of the streaming app (the demo page); the streams themselves are ASGI routes.

Include with ``path("", include("streaming.urls"))``: ``streams/demo/``.
"""

from django.urls import path

from . import views

app_name = "streaming"
urlpatterns = [
    path("streams/demo/", views.demo, name="demo"),
    path("streams/demo/publish/", views.demo_publish, name="demo-publish"),
]
