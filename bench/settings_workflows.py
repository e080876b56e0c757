"""Settings of the workflow benchmark: ``bench.settings_jobs`` on a database of its own
(``clusterkit_bench_workflows``, created by ``bench.workflows``), so its runs neither
disturb nor depend on the tables of the other suites."""

from __future__ import annotations

from bench.settings_jobs import *  # noqa: F403
from bench.settings_jobs import DATABASES

DB_NAME = "clusterkit_bench_workflows"
DATABASES = {"default": {**DATABASES["default"], "NAME": DB_NAME}}
