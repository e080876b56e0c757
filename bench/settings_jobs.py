"""Settings of the jobs benchmark: ``bench.settings`` plus the jobs app and django-tasks-db.

Two Tasks backends on the same PostgreSQL database: ``default`` is clusterkit's
:class:`jobs.backends.ClusterTaskBackend`, ``db`` is django-tasks-db's ``DatabaseBackend``
(its ``db_worker`` polls the table). The no-op tasks are in :mod:`bench.job_tasks`.
"""

from __future__ import annotations

from bench.settings import *  # noqa: F403
from bench.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "jobs", "django_tasks_db"]
TASKS = {
    "default": {"BACKEND": "jobs.backends.ClusterTaskBackend"},
    "db": {"BACKEND": "django_tasks_db.backend.DatabaseBackend"},
}
