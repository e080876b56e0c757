"""App configuration of ratelimit."""

from django.apps import AppConfig


class RatelimitConfig(AppConfig):
    """The ratelimit app of clusterkit."""

    name = "ratelimit"
    label = "ratelimit"
    default_auto_field = "django.db.models.BigAutoField"
