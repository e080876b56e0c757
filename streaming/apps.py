"""App configuration of streaming."""

from django.apps import AppConfig


class StreamingConfig(AppConfig):
    """The streaming app of clusterkit."""

    name = "streaming"
    label = "streaming"
    default_auto_field = "django.db.models.BigAutoField"
