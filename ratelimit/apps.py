"""App configuration of ratelimit."""

from django.apps import AppConfig


class RatelimitConfig(AppConfig):
    """The ratelimit app of clusterkit: registers the system checks."""

    name = "ratelimit"
    label = "ratelimit"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register :func:`ratelimit.checks.ratelimit_check`."""
        from django.core import checks

        from .checks import ratelimit_check

        checks.register(ratelimit_check, "ratelimit")
