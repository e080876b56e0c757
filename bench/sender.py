"""A client process of the throughput benchmark: ``python -m bench.sender --n … --start-at …``.

Sets Django up on ``bench.settings`` and connects, prints ``ready``, waits for a line on
stdin (the benchmark releases every client at once), sends its share of persisted
``increment`` calls, and prints one JSON line: when it began and ended sending.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def send_calls(n: int, entities: int, batch: int, offset: int, mode: str, prefix: str) -> None:
    """Send ``n`` persisted increments spread over ``entities`` ids.

    ``mode`` ``bulk``: ``send_many`` in batches of ``batch`` (one transaction each);
    ``single``: one ``.send()`` (one transaction) per call.
    """
    from bench.entities import BenchCounter

    if mode == "bulk":
        for start in range(0, n, batch):
            stop = min(n, start + batch)
            BenchCounter.send_many(
                [
                    (f"{prefix}-{(offset + i) % entities}", "increment", {"by": 1})
                    for i in range(start, stop)
                ]
            )
    else:
        for i in range(n):
            BenchCounter.client(f"{prefix}-{(offset + i) % entities}").increment.send(by=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--entities", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--mode", choices=("bulk", "single"), default="bulk")
    parser.add_argument("--prefix", default="tp")
    opts = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    from django.db import connection

    connection.ensure_connection()
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return
    began = time.time()
    send_calls(opts.n, opts.entities, opts.batch, opts.offset, opts.mode, opts.prefix)
    print(json.dumps({"began": began, "ended": time.time()}), flush=True)


if __name__ == "__main__":
    main()
