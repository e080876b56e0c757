"""App configuration of the clusterkit core."""

from django.apps import AppConfig


class ClusterkitConfig(AppConfig):
    """Registers the system checks and discovers each installed app's ``entities.py``."""

    name = "clusterkit"
    label = "clusterkit"
    verbose_name = "Cluster"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.utils.module_loading import autodiscover_modules

        from . import checks, cron, metrics, tracing  # noqa: F401  (checks, the Cron entity)

        metrics.install()  # the runner and cluster collectors of /metrics

        autodiscover_modules("entities")
