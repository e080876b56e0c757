"""App configuration of streaming."""

from django.apps import AppConfig


class StreamingConfig(AppConfig):
    """The streaming app of clusterkit: durable, ordered, tenant-scoped event streams."""

    name = "streaming"
    label = "streaming"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Streaming"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
