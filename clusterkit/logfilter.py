"""Logging that says which request, tenant, runner, shard and entity a record came from.

:class:`ContextFilter` copies the current :mod:`clusterkit.context` onto every record as
``request_id``, ``tenant_id``, ``trace_id``, ``runner_id``, ``shard`` (``group:id``) and
``entity`` (``type/id``); a field that is not known is ``"-"``, so a format string can
always name them. :class:`ContextFormatter` appends the known ones as ``key=value``
pairs to any format. Attach the filter to the *handler* (filters on a logger do not see
records of its children)::

    LOGGING = {
        "version": 1,
        "filters": {"context": {"()": "clusterkit.logfilter.ContextFilter"}},
        "formatters": {"context": {"()": "clusterkit.logfilter.ContextFormatter",
                                   "format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
        "handlers": {"console": {"class": "logging.StreamHandler",
                                 "filters": ["context"], "formatter": "context"}},
        "loggers": {"clusterkit": {"handlers": ["console"], "level": "INFO"}},
    }
"""

from __future__ import annotations

import logging

from . import context

FIELDS = ("request_id", "tenant_id", "trace_id", "runner_id", "shard", "entity")
MISSING = "-"
# Set by a runner on its own threads and loop, so its lifecycle records name it even
# outside any handler (a process hosts one runner, or the first one).
process_runner: dict[str, int] = {}


class ContextFilter(logging.Filter):
    """Adds the request context's fields to each record (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = context.current()
        cluster = ctx.cluster
        values = {
            "request_id": ctx.request_id,
            "tenant_id": ctx.tenant_id,
            "trace_id": ctx.traceparent.split("-")[1] if ctx.traceparent else None,
            "runner_id": cluster.runner_id if cluster else process_runner.get("id"),
            "shard": f"{cluster.shard_group}:{cluster.shard_id}" if cluster else None,
            "entity": f"{cluster.entity_type}/{cluster.entity_id}" if cluster else None,
        }
        for key, value in values.items():
            if getattr(record, key, None) in (None, MISSING):  # an explicit extra wins
                setattr(record, key, MISSING if value is None else value)
        return True


class ContextFormatter(logging.Formatter):
    """A formatter that appends ``key=value`` for each context field a record has."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        pairs = [
            f"{key}={value}"
            for key in FIELDS
            if (value := getattr(record, key, None)) not in (None, MISSING)
        ]
        return f"{text} [{' '.join(pairs)}]" if pairs else text
