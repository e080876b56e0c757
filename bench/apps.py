"""App configuration of the benchmark suite (its ``entities.py`` is auto-discovered)."""

from django.apps import AppConfig


class BenchConfig(AppConfig):
    """The ``bench`` app: only entity types, no models."""

    name = "bench"
    label = "bench"
    verbose_name = "Benchmarks"
    default_auto_field = "django.db.models.BigAutoField"
