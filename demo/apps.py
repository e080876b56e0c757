"""App configuration of the demo project."""

from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo app: a few entities and a scripted scenario."""

    name = "demo"
    label = "demo"
    default_auto_field = "django.db.models.BigAutoField"
