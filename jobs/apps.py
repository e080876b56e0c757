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

        from clusterkit import pruning as cluster_pruning

        from . import checks, engine, pruning  # noqa: F401  (the checks and the jobs.Job entity)

        cluster_pruning.register("finished jobs", pruning.prune_finished)
        from . import workflow  # noqa: F401  (the jobs.Workflow entity)

        autodiscover_modules("tasks")
        autodiscover_modules("workflows")
