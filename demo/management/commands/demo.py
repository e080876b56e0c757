"""``manage.py demo``: a scripted scenario through clusterkit, with a summary at the end."""

from __future__ import annotations

import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from clusterkit.conf import cluster_settings
from clusterkit.models import Reply
from demo.entities import Account, Mailer, PageViews, Reminder


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Command(BaseCommand):
    help = (
        "Run the demo scenario: bulk and single persisted calls, volatile calls, "
        "deduplication, scheduled delivery and retried failures; print a summary."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--calls", type=int, default=5000, help="bulk persisted calls")
        parser.add_argument("--runners", type=int, default=0,
                            help="start N runworker subprocesses (needs a shared database)")

    def handle(self, *args: Any, **options: Any) -> None:
        runners = self._start_runners(options["runners"])
        try:
            self._scenario(options["calls"])
        finally:
            for proc in runners:
                proc.terminate()
            for proc in runners:
                proc.wait(30)
            if cluster_settings.EMBEDDED_RUNNER:
                from clusterkit import embedded

                embedded.stop()

    def _start_runners(self, count: int) -> list[subprocess.Popen[bytes]]:
        if not count:
            if not cluster_settings.EMBEDDED_RUNNER:
                self.stdout.write("No embedded runner: make sure `manage.py runworker` runs.")
            return []
        if "sqlite" in settings.DATABASES["default"]["ENGINE"]:
            raise CommandError("--runners needs PostgreSQL (settings.prod with DATABASE_URL)")
        if cluster_settings.EMBEDDED_RUNNER:
            raise CommandError("--runners needs CLUSTERKIT['EMBEDDED_RUNNER'] = False")
        root = Path(__file__).resolve().parents[3]
        log_dir = Path(tempfile.mkdtemp(prefix="clusterkit-demo-"))
        procs = []
        for i in range(count):
            with (log_dir / f"runner-{i}.log").open("wb") as log:
                procs.append(subprocess.Popen(
                    [sys.executable, "manage.py", "runworker"], cwd=root, env=dict(os.environ),
                    stdout=log, stderr=subprocess.STDOUT,
                ))
        deadline = time.monotonic() + 60
        for i in range(count):
            path = log_dir / f"runner-{i}.log"
            while "listening on" not in path.read_text(errors="replace"):
                if time.monotonic() > deadline or procs[i].poll() is not None:
                    raise CommandError(f"runner {i} did not start; see {path}")
                time.sleep(0.1)
        self.stdout.write(f"started {count} runners (logs in {log_dir})")
        return procs

    def step(self, text: str) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING(text))
        self.stdout.flush()

    def _scenario(self, calls: int) -> None:
        run = uuid.uuid4().hex[:6]
        summary: list[tuple[str, str]] = []

        self.step(f"1. {calls} persisted deposits to 100 accounts, sent in bulk")
        batch = [(f"{run}-acct-{i % 100}", "deposit", {"amount": 1}) for i in range(calls)]
        started = time.perf_counter()
        ids: list[int] = []
        for start in range(0, calls, 500):
            ids.extend(Account.send_many(batch[start : start + 500]))
        last = -1
        while (done := Reply.objects.filter(request_id__in=ids[-1000:]).count()) < len(ids[-1000:]):
            if done != last:
                self.stdout.write(f"   … {Reply.objects.filter(request_id__in=ids).count()}"
                                  f"/{calls} handled")
                last = done
            time.sleep(0.25)
            if time.perf_counter() - started > 300:
                raise CommandError("bulk calls did not finish in 5 minutes")
        while Reply.objects.filter(request_id__in=ids).count() < calls:
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        balance = Account.client(f"{run}-acct-7").balance_of.call()
        summary.append(("persisted calls (bulk)", f"{calls / elapsed:,.0f} calls/s"))
        self.stdout.write(f"   {calls} handled in {elapsed:.2f}s; account 7 holds {balance}")

        self.step("2. 300 single persisted calls, one at a time (send → handler start)")
        lags = [Account.client(f"{run}-lat").stamp.call(sent_at=time.time()) * 1000
                for _ in range(300)]
        summary.append(("persisted latency p50 / p99",
                        f"{statistics.median(lags):.2f} / {percentile(lags, 0.99):.2f} ms"))

        self.step("3. 2000 volatile calls")
        rtts = []
        for i in range(2000):
            t0 = time.perf_counter()
            PageViews.client(f"{run}-page-{i % 10}").hit.call()
            rtts.append((time.perf_counter() - t0) * 1000)
        summary.append(("volatile round trip p50 / p99",
                        f"{statistics.median(rtts):.2f} / {percentile(rtts, 0.99):.2f} ms"))

        self.step("4. 100 orders sent with 20 distinct primary keys")
        for i in range(100):
            Account.client(f"{run}-dedup").deposit.options(primary_key=f"order-{i % 20}").call(
                amount=1
            )
        deduped = Account.client(f"{run}-dedup").balance_of.call()
        summary.append(("deduplicated", f"100 sends → {deduped} handled, {100 - deduped} deduped"))

        self.step("5. 5 reminders scheduled 1 to 2 s ahead")
        lates = []
        for i in range(5):
            due = time.time() + 1 + i * 0.25
            late = Reminder.client(f"{run}-r{i}").remind.options(
                deliver_at=dt.datetime.fromtimestamp(due, dt.UTC)
            ).call(due_at=due)
            lates.append(late * 1000)
        summary.append(("scheduled calls delivered late by",
                        f"max {max(lates):.0f} ms after their time"))

        self.step("6. a mail handler that fails twice before it works")
        outcome = Mailer.client(f"{run}-mailer").send_mail.call(to=f"{run}@example.com")
        self.stdout.write(f"   {outcome}")
        summary.append(("retried failures", outcome))

        self.step("Summary")
        width = max(len(k) for k, _ in summary)
        for key, value in summary:
            self.stdout.write(f"  {key.ljust(width)}  {value}")
        self.stdout.write(self.style.SUCCESS("demo finished"))
