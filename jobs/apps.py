"""App configuration of jobs."""

from django.apps import AppConfig


class JobsConfig(AppConfig):
    """Durable jobs on clusterkit: JobService and the Django Tasks backend."""

    name = "jobs"
    label = "jobs"
    verbose_name = "Jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.utils.module_loading import autodiscover_modules

        from . import checks, engine  # noqa: F401  (the checks and the jobs.Job entity)

        autodiscover_modules("tasks")
