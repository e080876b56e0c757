"""``python -m bench [core|ratelimit|all] [options of that suite]`` (``make bench``: all).

Each suite runs in its own Python process: ``bench.ratelimit`` configures Django by hand
and ``bench.core`` uses ``bench.settings``, so they cannot share one interpreter.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUITES = {
    "core": "bench.core",  # the clusterkit core vs Procrastinate and Redis (bench/core.py)
    "streaming": "bench.streaming",  # SSE latency and fan-out vs django-eventstream
    "jobs": "bench.jobs",  # jobs vs Procrastinate, django-tasks-db and Celery (bench/jobs.py)
    "ratelimit": "bench.ratelimit",  # the rate limiter vs EVALSHA and django-ratelimit
    "workflows": "bench.workflows",  # durable workflows vs DBOS (bench/workflows.py)
}


def main(argv: list[str]) -> int:
    """Run the suite named first in ``argv`` (``all`` when none) with the rest as options."""
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        print("suites: " + ", ".join([*SUITES, "all"]) + "; `python -m bench SUITE --help`")
        return 0
    name = argv[0] if argv and not argv[0].startswith("-") else "all"
    rest = argv[1:] if argv and not argv[0].startswith("-") else argv
    if name != "all" and name not in SUITES:
        print(f"unknown suite {name!r}; choose from {', '.join([*SUITES, 'all'])}", file=sys.stderr)
        return 2
    status = 0
    for suite in SUITES if name == "all" else [name]:
        print(f"\n=== {suite} ===", flush=True)
        # Options after the suite name belong to it; `all` passes none.
        code = subprocess.call(
            [sys.executable, "-m", SUITES[suite], *(rest if name != "all" else [])], cwd=ROOT
        )
        status = status or code
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
