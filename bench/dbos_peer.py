"""DBOS, the peer of ``bench.workflows``: ``python -m bench.dbos_peer N LATENCY_N OUT``.

A workflow of three no-op steps, on DBOS Transact with its system database on the same
PostgreSQL (database ``dbos_bench``, created by DBOS on launch). DBOS runs a workflow in
the process that starts it, on its own thread pool; throughput is N workflows started
at once, first start → last result; latency is start → result of one workflow at a time.
Prints nothing but writes a JSON object to ``OUT``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from dbos import DBOS, DBOSConfig

URL = "postgresql://{user}@{host}:{port}/dbos_bench".format(
    user=os.environ.get("BENCH_PG_USER", "postgres"),
    host=os.environ.get("BENCH_PG_HOST", "127.0.0.1"),
    port=os.environ.get("BENCH_PG_PORT", "5432"),
)


@DBOS.step()
def noop(n: int) -> int:
    return n


@DBOS.workflow()
def three_steps(n: int) -> int:
    return noop(n) + noop(n) + noop(n)


def main(count: int, latency_count: int, out: Path) -> None:
    config: DBOSConfig = {"name": "clusterkit-bench", "system_database_url": URL,
                          "log_level": "WARNING"}
    DBOS(config=config)
    DBOS.launch()
    try:
        for n in range(5):  # warm up
            DBOS.start_workflow(three_steps, n).get_result()
        started = time.perf_counter()
        handles = [DBOS.start_workflow(three_steps, n) for n in range(count)]
        results = [h.get_result() for h in handles]
        elapsed = time.perf_counter() - started
        assert results == [3 * n for n in range(count)]
        latencies = []
        for n in range(latency_count):
            t0 = time.perf_counter()
            DBOS.start_workflow(three_steps, n).get_result()
            latencies.append((time.perf_counter() - t0) * 1000)
        out.write_text(json.dumps({"rate": count / elapsed, "latencies": latencies}))
    finally:
        DBOS.destroy()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))
