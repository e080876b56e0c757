"""``manage.py workflows status|cancel|resume``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Count

from jobs.workflow import cancel, history
from jobs.workflow.models import STATUS_CHOICES, TERMINAL, WorkflowExecution


class Command(BaseCommand):
    help = "Workflows: executions per status, one execution's history, cancel, resume."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        status = sub.add_parser("status", help="executions per workflow and status, or one")
        status.add_argument("execution_id", nargs="?", help="show this execution's history")
        stop = sub.add_parser("cancel", help="cancel executions (their compensations run)")
        stop.add_argument("execution_ids", nargs="+")
        again = sub.add_parser("resume", help="make executions replay now")
        again.add_argument("execution_ids", nargs="*")
        again.add_argument("--running", action="store_true",
                           help="every execution marked running (after an outage)")

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, f"do_{options['action']}")(options)

    def do_status(self, options: dict[str, Any]) -> None:
        if options["execution_id"]:
            self._show(options["execution_id"])
            return
        statuses = [s for s, _ in STATUS_CHOICES]
        counts: dict[str, dict[str, int]] = {}
        for row in WorkflowExecution.objects.values("name", "status").annotate(n=Count("id")):
            counts.setdefault(row["name"], {})[row["status"]] = row["n"]
        self.stdout.write(f"{'workflow':<40} " + " ".join(f"{s:>10}" for s in statuses))
        for name in sorted(counts):
            cells = " ".join(f"{counts[name].get(s, 0):>10}" for s in statuses)
            self.stdout.write(f"{name:<40} {cells}")

    def _show(self, execution_id: str) -> None:
        row = WorkflowExecution.objects.filter(pk=execution_id).first()
        if row is None:
            raise CommandError(f"no execution {execution_id}")
        self.stdout.write(f"{row.id} {row.name} {row.status}"
                          + (" (cancel requested)" if row.cancel_requested else ""))
        if row.error_type:
            self.stdout.write(f"  error: {row.error_type}")
        for step in history.steps(row.id):
            extra = f" attempts={len(step.attempts)}" if step.attempts else ""
            if step.compensated_at:
                extra += " compensated"
            self.stdout.write(f"  #{step.seq} {step.kind} {step.name} {step.state}{extra}")

    def do_cancel(self, options: dict[str, Any]) -> None:
        for execution_id in options["execution_ids"]:
            done = cancel(execution_id)
            self.stdout.write(f"{execution_id}: {'cancelling' if done else 'already ended'}")

    def do_resume(self, options: dict[str, Any]) -> None:
        if not options["execution_ids"] and not options["running"]:
            raise CommandError("name execution ids, or --running")
        ids = list(options["execution_ids"])
        if options["running"]:
            ids += list(WorkflowExecution.objects.filter(status="running")
                        .values_list("id", flat=True))
        live = set(WorkflowExecution.objects.filter(pk__in=ids).exclude(status__in=TERMINAL)
                   .values_list("id", flat=True))
        for execution_id in ids:
            if execution_id in live:
                history.wake(execution_id, "resume from the command line")
            outcome = "resumed" if execution_id in live else "not live"
            self.stdout.write(f"{execution_id}: {outcome}")
