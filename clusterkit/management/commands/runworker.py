"""``manage.py runworker``: run a clusterkit runner (and, if named, Channels consumers)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from clusterkit.conf import cluster_settings
from clusterkit.runner import Runner


class Command(BaseCommand):
    help = (
        "Run a clusterkit runner: host the entities of the shards it leases. Channel names "
        "given as arguments also run those Channels consumers, as Channels' runworker does."
    )
    leave_locale_alone = True

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("channels", nargs="*", help="Channels consumers to run as well.")
        parser.add_argument(
            "--layer", default="default", help="Channel layer alias for the channels given."
        )
        parser.add_argument(
            "--groups",
            default="",
            help="Comma-separated shard groups to host (default: CLUSTERKIT['SHARD_GROUPS']).",
        )
        parser.add_argument(
            "--metrics-port",
            type=int,
            default=cluster_settings.METRICS_PORT,
            help="Serve Prometheus metrics on this port (0: any free port; default: "
            "CLUSTERKIT['METRICS_PORT'], unset = no metrics server).",
        )
        parser.add_argument(
            "--metrics-address",
            default=cluster_settings.METRICS_ADDRESS,
            help="Address the metrics server listens on (default: CLUSTERKIT['METRICS_ADDRESS']).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        groups = [g for g in options["groups"].split(",") if g] or None
        unknown = set(groups or ()) - set(cluster_settings.SHARD_GROUPS)
        if unknown:
            raise CommandError(f"unknown shard groups: {', '.join(sorted(unknown))}")
        if options["verbosity"] >= 2:
            logging.getLogger("clusterkit").setLevel(logging.INFO)
        port = options["metrics_port"]
        if port is not None:
            if not 0 <= port <= 65535:
                raise CommandError("--metrics-port must be in 0..65535")
            from clusterkit import metrics

            try:
                server = metrics.serve(port, options["metrics_address"])
            except OSError as exc:
                raise CommandError(f"cannot serve metrics on port {port}: {exc}") from exc
            self.stdout.write(
                f"metrics on http://{options['metrics_address']}:{server.server_port}/metrics"
            )
            self.stdout.flush()
        asyncio.run(self._run(groups, options["channels"], options["layer"]))

    async def _run(self, groups: list[str] | None, channels: list[str], layer: str) -> None:
        runner = Runner(groups)
        tasks = [asyncio.ensure_future(runner.run(install_signals=True))]
        if channels:
            tasks.append(asyncio.ensure_future(self._channels_worker(channels, layer)))
        ready = asyncio.ensure_future(asyncio.to_thread(runner.ready.wait, 60))
        done, _ = await asyncio.wait([tasks[0], ready], return_when=asyncio.FIRST_COMPLETED)
        if ready in done and runner.ready.is_set():
            self.stdout.write(
                f"runner {runner.runner_id} listening on {runner.address}, "
                f"holding {len(runner.held)} shards",
            )
            self.stdout.flush()
        await tasks[0]
        for task in tasks[1:]:
            task.cancel()

    async def _channels_worker(self, channels: list[str], layer: str) -> None:
        from channels.layers import get_channel_layer
        from channels.routing import get_default_application
        from channels.worker import Worker

        channel_layer = get_channel_layer(layer)
        if channel_layer is None:
            raise CommandError("You do not have any CHANNEL_LAYERS configured.")
        worker = Worker(
            application=get_default_application(), channels=channels, channel_layer=channel_layer
        )
        await worker.arun()
