"""App configuration of jobs."""

from django.apps import AppConfig


class JobsConfig(AppConfig):
    """The jobs app of clusterkit."""

    name = "jobs"
    label = "jobs"
    default_auto_field = "django.db.models.BigAutoField"
