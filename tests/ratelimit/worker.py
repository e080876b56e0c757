"""A separate process for the cross-process test: N decisions from T threads, prints allowed.

``python -m tests.ratelimit.worker URL PREFIX START N THREADS`` (START: a wall-clock time
to begin at, so that both processes really overlap).
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor


def main(url: str, prefix: str, start: float, n: int, threads: int) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings.test")
    import django

    django.setup()
    from django.test import override_settings

    from ratelimit import check

    from .conftest import redis_caches

    config = {"STORE": "redis", "CACHE": "ratelimit", "KEY_PREFIX": prefix,
              "PRESETS": {"fifty": {"rate": "50/h"}}}  # fmt: skip
    with override_settings(CACHES=redis_caches(url), RATELIMIT=config):
        check("fifty", "warmup")  # connect before the start line
        time.sleep(max(0.0, start - time.time()))
        with ThreadPoolExecutor(threads) as pool:
            results = list(pool.map(lambda _: check("fifty", "shared").allowed, range(n)))
    return sum(results)


if __name__ == "__main__":
    url, prefix, start, n, threads = sys.argv[1:6]
    print(main(url, prefix, float(start), int(n), int(threads)))
