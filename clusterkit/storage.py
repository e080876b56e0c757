"""SQL of the message path: store, claim, fence-commit and read back, on PostgreSQL or SQLite.

The hot path uses raw SQL through Django's connection (so a send joins the caller's
transaction) and moves rows in batches: one multi-row ``INSERT`` per send batch, one
``UPDATE … RETURNING`` per claim batch, one transaction per batch of replies.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import nullcontext
from functools import partial
from typing import Any, TypeVar

from django.db import connections, transaction
from django.db.models import Q
from django.db.models.functions import Now

from . import wakeup

T = TypeVar("T")
SQLITE_CHUNK = 500
MESSAGE_COLUMNS = (
    "id, message_key, shard_group, shard_id, entity_type, entity_id, kind, rpc, payload,"
    " headers, priority, deliver_at, last_read, attempts, processed"
)
PG_TYPES = (
    "bigint", "varchar", "varchar", "integer", "varchar", "varchar", "varchar", "text", "text",
    "smallint", "bigint",
)  # fmt: skip
REPLY_CHANNEL = "clusterkit_reply"
WAKE_CHANNEL = "clusterkit_wake"
NOTIFY_LIMIT = 7000


@dataclasses.dataclass(slots=True)
class OutgoingMessage:
    """A persisted call on its way into storage."""

    id: int
    message_key: str | None
    shard_group: str
    shard_id: int
    entity_type: str
    entity_id: str
    rpc: str
    payload: str
    headers: str
    priority: int = 0
    deliver_at: int | None = None

    def row(self) -> tuple[Any, ...]:
        return (
            self.id, self.message_key, self.shard_group, self.shard_id, self.entity_type,
            self.entity_id, self.rpc, self.payload, self.headers, self.priority, self.deliver_at,
        )  # fmt: skip


@dataclasses.dataclass(slots=True)
class ClaimedMessage:
    """A stored message handed to this runner under a read lease."""

    id: int
    shard_group: str
    shard_id: int
    entity_type: str
    entity_id: str
    rpc: str
    payload: str
    headers: str
    priority: int
    attempts: int
    deliver_at: int | None  # Unix ms, or None: due when stored
    epoch: int = -1  # the lease epoch it was claimed under, when the claim checked it


@dataclasses.dataclass(slots=True)
class Completion:
    """The outcome of a claimed message, waiting to be committed under its lease epoch."""

    request_id: int
    reply_id: int
    shard_group: str
    shard_id: int
    epoch: int
    status: int
    payload: str
    notify: bool
    entity_type: str = ""  # for the metrics of fenced results


def message_key(entity_type: str, entity_id: str, rpc: str, primary_key: str) -> str:
    """The dedup key of a call with a primary key (SHA-256 hex when longer than 255)."""
    key = f"{entity_type}/{entity_id}/{rpc}/{primary_key}"
    return key if len(key) <= 255 else hashlib.sha256(key.encode()).hexdigest()


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """``items`` in slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def notify_payloads(ids: Iterable[int]) -> Iterator[str]:
    """Comma-joined ids, split to fit PostgreSQL's NOTIFY payload limit."""
    buf: list[str] = []
    size = 0
    for value in ids:
        text = str(value)
        if size + len(text) + 1 > NOTIFY_LIMIT and buf:
            yield ",".join(buf)
            buf, size = [], 0
        buf.append(text)
        size += len(text) + 1
    if buf:
        yield ",".join(buf)


def claimed_rows(rows: Iterable[Sequence[Any]]) -> list[ClaimedMessage]:
    """Claimed rows as messages, in delivery order (``RETURNING`` keeps no order)."""
    messages = [ClaimedMessage(*row) for row in rows]
    messages.sort(key=lambda m: (-m.priority, m.id))
    return messages


def due_in(row: Sequence[Any] | None) -> int | None:
    """The milliseconds-until-due value of a :meth:`Storage.next_delivery` row."""
    return None if row is None or row[0] is None else max(0, int(row[0]))


class Storage:
    """Message storage on one database alias."""

    def __init__(self, alias: str = "default") -> None:
        self.alias = alias

    @property
    def connection(self) -> Any:
        return connections[self.alias]

    @property
    def is_postgres(self) -> bool:
        return bool(self.connection.vendor == "postgresql")

    @property
    def now_ms(self) -> str:
        """SQL for the database clock in Unix milliseconds."""
        if self.is_postgres:
            return "(extract(epoch from clock_timestamp()) * 1000)::bigint"
        return "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"

    def _shard_filter(self, shards: Sequence[int] | None) -> tuple[str, list[Any]]:
        """``AND shard_id IN (…)``, or nothing when every shard is meant (``None``)."""
        if shards is None:
            return "", []
        clause, params = self._in(shards)
        return f"AND shard_id {clause} ", params

    def _in(self, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """A portable ``IN (…)`` / ``= ANY(…)`` clause for ``values``."""
        if self.is_postgres:
            return "= ANY(%s)", [list(values)]
        return f"IN ({', '.join(['%s'] * len(values))})", list(values)

    # -- sending ---------------------------------------------------------------------

    def save(
        self,
        messages: Sequence[OutgoingMessage],
        *,
        before: tuple[str, list[Any]] | None = None,
        resolve_ids: bool = True,
    ) -> list[int]:
        """Insert ``messages`` in the caller's transaction; return each one's stored id.

        A message whose key is already stored is not inserted again: its id is the
        original's, so the caller waits for (or reads) the first reply. The owning runners
        are woken when the transaction commits. ``before`` (PostgreSQL only) is a
        data-modifying statement and its parameters run in the same statement, first:
        rows that belong with the messages, stored with them in one round trip. Without
        ``resolve_ids`` a deduplicated message's id is not looked up (one round trip less).
        """
        if not messages:
            return []
        # On PostgreSQL one statement stores the rows and wakes their runners, atomic by
        # itself (one round trip in autocommit); SQLite batches its inserts in a transaction.
        atomic = transaction.atomic(using=self.alias) if not self.is_postgres else nullcontext()
        with atomic, self.connection.cursor() as cursor:
            first, first_params = ("", []) if before is None else (
                f"first AS ({before[0]}), ", before[1]
            )
            if self.is_postgres and len(messages) == 1:
                cursor.execute(
                    f"WITH {first}ins AS (INSERT INTO clusterkit_message ({MESSAGE_COLUMNS}) "
                    "VALUES (%s, %s, %s, %s, %s, %s, 0, %s, %s, %s, %s, %s, NULL, 0, false) "
                    "ON CONFLICT (message_key) DO NOTHING RETURNING 1) SELECT pg_notify(%s, %s)",
                    [*first_params, *messages[0].row(), WAKE_CHANNEL, messages[0].shard_group],
                )
            elif self.is_postgres:
                casts = ", ".join(f"%s::{t}[]" for t in PG_TYPES)
                columns = list(zip(*(m.row() for m in messages), strict=True))
                groups = sorted({m.shard_group for m in messages})
                cursor.execute(
                    f"WITH {first}ins AS (INSERT INTO clusterkit_message ({MESSAGE_COLUMNS}) "
                    "SELECT c0, c1, c2, c3, c4, c5, 0, c6, c7, c8, c9, c10, NULL, 0, false "
                    f"FROM unnest({casts}) AS t(c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10) "
                    "ON CONFLICT (message_key) DO NOTHING RETURNING 1) "
                    "SELECT pg_notify(%s, g) FROM unnest(%s::text[]) AS g",
                    [*first_params, *(list(col) for col in columns), WAKE_CHANNEL, groups],
                )
            else:
                if before is not None:
                    raise ValueError("Storage.save(before=...) needs PostgreSQL")
                cursor.executemany(
                    f"INSERT INTO clusterkit_message ({MESSAGE_COLUMNS}) VALUES "
                    "(%s, %s, %s, %s, %s, %s, 0, %s, %s, %s, %s, %s, NULL, 0, 0) "
                    "ON CONFLICT (message_key) DO NOTHING",
                    [m.row() for m in messages],
                )
            ids = [m.id for m in messages]
            keyed = [(i, m.message_key) for i, m in enumerate(messages) if m.message_key]
            if keyed and resolve_ids:
                stored: dict[str, int] = {}
                for part in chunks([k for _, k in keyed], SQLITE_CHUNK):
                    clause, params = self._in(part)
                    cursor.execute(
                        "SELECT message_key, id FROM clusterkit_message "
                        f"WHERE message_key {clause}",
                        params,
                    )
                    stored.update(cursor.fetchall())
                for index, key in keyed:
                    ids[index] = stored.get(str(key), ids[index])
        groups_set = {m.shard_group for m in messages}
        transaction.on_commit(partial(wakeup.wake_local, groups_set), using=self.alias)
        return ids

    # -- running ---------------------------------------------------------------------

    def claim(
        self, group: str, shards: Sequence[int] | None, limit: int, read_lease_ms: int
    ) -> list[ClaimedMessage]:
        """Take up to ``limit`` due, unprocessed messages of ``shards`` under a read lease.

        ``shards=None`` means every shard of the group. One statement, atomic by itself.
        """
        query = self.claim_query(group, shards, limit, read_lease_ms)
        if query is None:
            return []
        with self.connection.cursor() as cursor:
            cursor.execute(*query)
            return claimed_rows(cursor.fetchall())

    def claim_query(
        self,
        group: str,
        shards: Sequence[int] | None,
        limit: int,
        read_lease_ms: int,
        runner_id: int | None = None,
    ) -> tuple[str, list[Any]] | None:
        """The SQL and parameters of :meth:`claim` (``None`` when there is nothing to ask).

        With ``runner_id`` only messages of shards that runner holds *in the database* are
        taken, whatever it believes in memory, and (PostgreSQL) each comes back with the
        lease epoch it was claimed under. Lease rows are not locked: a paused runner must
        never hold up a hand-over; a claim that loses the race is fenced at commit and
        :meth:`release` hands its messages back.
        """
        if shards == [] or limit <= 0:
            return None
        if runner_id is not None and self.is_postgres:
            return self._fenced_claim_query(group, shards, limit, read_lease_ms, runner_id)
        clause, shard_params = self._shard_filter(shards)
        if runner_id is not None:  # SQLite: one writer, the check is enough
            clause += (
                "AND EXISTS (SELECT 1 FROM clusterkit_shardlease l WHERE "
                "l.shard_group = clusterkit_message.shard_group AND "
                "l.shard_id = clusterkit_message.shard_id AND l.runner_id = %s) "
            )
            shard_params = [*shard_params, runner_id]
        lock = "FOR UPDATE SKIP LOCKED" if self.is_postgres else ""
        processed = "false" if self.is_postgres else "0"
        sql = (
            f"UPDATE clusterkit_message SET last_read = {self.now_ms}, attempts = attempts + 1 "
            "WHERE id IN (SELECT id FROM clusterkit_message "
            f"WHERE processed = {processed} AND shard_group = %s {clause}"
            f"AND (deliver_at IS NULL OR deliver_at <= {self.now_ms}) "
            f"AND (last_read IS NULL OR last_read < {self.now_ms} - %s) "
            f"ORDER BY priority DESC, id LIMIT %s {lock}) "
            "RETURNING id, shard_group, shard_id, entity_type, entity_id, rpc, payload, headers,"
            " priority, attempts, deliver_at"
        )
        return sql, [group, *shard_params, read_lease_ms, limit]

    def _fenced_claim_query(
        self, group: str, shards: Sequence[int] | None, limit: int, read_lease_ms: int,
        runner_id: int,
    ) -> tuple[str, list[Any]]:
        clause, shard_params = ("", []) if shards is None else ("AND m.shard_id = ANY(%s) ", [
            list(shards)
        ])
        sql = (
            "WITH picked AS (SELECT m.id, l.epoch FROM clusterkit_message m "
            "JOIN clusterkit_shardlease l "
            "ON l.shard_group = m.shard_group AND l.shard_id = m.shard_id "
            f"WHERE m.processed = false AND m.shard_group = %s {clause}"
            "AND l.runner_id = %s AND l.expires_at > now() "
            f"AND (m.deliver_at IS NULL OR m.deliver_at <= {self.now_ms}) "
            f"AND (m.last_read IS NULL OR m.last_read < {self.now_ms} - %s) "
            "ORDER BY m.priority DESC, m.id LIMIT %s "
            "FOR UPDATE OF m SKIP LOCKED) "
            f"UPDATE clusterkit_message SET last_read = {self.now_ms}, "
            "attempts = clusterkit_message.attempts + 1 FROM picked "
            "WHERE clusterkit_message.id = picked.id "
            "RETURNING clusterkit_message.id, shard_group, shard_id, entity_type, entity_id, rpc,"
            " payload, headers, priority, attempts, deliver_at, picked.epoch"
        )
        return sql, [group, *shard_params, runner_id, read_lease_ms, limit]

    def next_delivery(self, group: str, shards: Sequence[int] | None) -> int | None:
        """Milliseconds until the earliest scheduled message of ``shards`` is due."""
        query = self.next_delivery_query(group, shards)
        if query is None:
            return None
        with self.connection.cursor() as cursor:
            cursor.execute(*query)
            return due_in(cursor.fetchone())

    def next_delivery_query(
        self, group: str, shards: Sequence[int] | None
    ) -> tuple[str, list[Any]] | None:
        """The SQL and parameters of :meth:`next_delivery`."""
        if shards == []:
            return None
        clause, params = self._shard_filter(shards)
        processed = "false" if self.is_postgres else "0"
        return (
            f"SELECT MIN(deliver_at) - {self.now_ms} FROM clusterkit_message "
            f"WHERE processed = {processed} AND shard_group = %s {clause}"
            f"AND deliver_at > {self.now_ms}",
            [group, *params],
        )

    def reset_read_leases(self, group: str, shards: Sequence[int]) -> int:
        """Make the unprocessed messages of newly acquired shards claimable again."""
        if not shards:
            return 0
        clause, params = self._in(shards)
        processed = "false" if self.is_postgres else "0"
        with self.connection.cursor() as cursor:
            cursor.execute(
                "UPDATE clusterkit_message SET last_read = NULL "
                f"WHERE processed = {processed} AND shard_group = %s AND shard_id {clause} "
                "AND last_read IS NOT NULL",
                [group, *params],
            )
            return int(cursor.rowcount)

    def commit(
        self, runner_id: int, completions: Sequence[Completion]
    ) -> tuple[list[Completion], list[Completion]]:
        """Commit replies whose shard this runner still holds at the same epoch.

        Returns ``(committed, fenced)``. The lease rows are locked for the transaction,
        so a takeover waits for this commit and then sees the messages processed.
        """
        from .models import ShardLease

        touched: dict[str, set[int]] = {}
        for c in completions:
            touched.setdefault(c.shard_group, set()).add(c.shard_id)
        which = Q()
        for group, shard_ids in touched.items():
            which |= Q(shard_group=group, shard_id__in=sorted(shard_ids))
        with transaction.atomic(using=self.alias):
            held = set(
                ShardLease.objects.using(self.alias)
                .select_for_update(no_key=True)
                .filter(which, runner_id=runner_id, expires_at__gt=Now())
                .values_list("shard_group", "shard_id", "epoch")
            )
            ok = [c for c in completions if (c.shard_group, c.shard_id, c.epoch) in held]
            fenced = [c for c in completions if (c.shard_group, c.shard_id, c.epoch) not in held]
            if ok:
                self._write_replies(ok)
        return ok, fenced

    def _write_replies(self, done: Sequence[Completion]) -> None:
        ids = [c.request_id for c in done]
        rows = [(c.reply_id, c.request_id, c.status, c.payload) for c in done]
        with self.connection.cursor() as cursor:
            if self.is_postgres:
                cursor.execute(
                    "UPDATE clusterkit_message SET processed = true WHERE id = ANY(%s)", [ids]
                )
                cols = list(zip(*rows, strict=True))
                cursor.execute(
                    "INSERT INTO clusterkit_reply "
                    "(id, request_id, kind, sequence, status, payload, acked) "
                    "SELECT r, q, 0, 0, s, p, false FROM "
                    "unnest(%s::bigint[], %s::bigint[], %s::smallint[], %s::text[]) "
                    "AS t(r, q, s, p) "
                    "ON CONFLICT (request_id, kind, sequence) DO NOTHING",
                    [list(c) for c in cols],
                )
                waiting = [c.request_id for c in done if c.notify]
                for payload in notify_payloads(waiting):
                    cursor.execute("SELECT pg_notify(%s, %s)", [REPLY_CHANNEL, payload])
            else:
                for part in chunks(ids, SQLITE_CHUNK):
                    clause, params = self._in(part)
                    cursor.execute(
                        f"UPDATE clusterkit_message SET processed = 1 WHERE id {clause}", params
                    )
                cursor.executemany(
                    "INSERT INTO clusterkit_reply "
                    "(id, request_id, kind, sequence, status, payload, acked) "
                    "VALUES (%s, %s, 0, 0, %s, %s, 0) "
                    "ON CONFLICT (request_id, kind, sequence) DO NOTHING",
                    rows,
                )

    def release(self, message_ids: Sequence[int]) -> None:
        """Drop the read lease of unprocessed messages (their results were fenced), so the
        shard's new owner claims them now rather than after ``READ_LEASE``."""
        processed = "false" if self.is_postgres else "0"
        with self.connection.cursor() as cursor:
            for part in chunks(list(message_ids), SQLITE_CHUNK):
                clause, params = self._in(part)
                cursor.execute(
                    "UPDATE clusterkit_message SET last_read = NULL "
                    f"WHERE processed = {processed} AND id {clause}",
                    params,
                )

    # -- reading back ----------------------------------------------------------------

    def replies(self, request_ids: Sequence[int]) -> dict[int, tuple[int, str]]:
        """The exit replies stored for ``request_ids``: ``{id: (status, payload)}``."""
        found: dict[int, tuple[int, str]] = {}
        with self.connection.cursor() as cursor:
            for part in chunks(list(request_ids), SQLITE_CHUNK):
                clause, params = self._in(part)
                cursor.execute(
                    "SELECT request_id, status, payload FROM clusterkit_reply "
                    f"WHERE kind = 0 AND request_id {clause}",
                    params,
                )
                for request_id, status, payload in cursor.fetchall():
                    found[request_id] = (status, payload)
        return found

    def prune(self, before_id: int, batch: int = 5000) -> int:
        """Delete processed messages (and their replies) with ids below ``before_id``."""
        total = 0
        processed = "true" if self.is_postgres else "1"
        while True:
            with transaction.atomic(using=self.alias), self.connection.cursor() as cursor:
                cursor.execute(
                    "SELECT id FROM clusterkit_message "
                    f"WHERE processed = {processed} AND id < %s ORDER BY id LIMIT %s",
                    [before_id, batch],
                )
                ids = [row[0] for row in cursor.fetchall()]
                if not ids:
                    return total
                for part in chunks(ids, SQLITE_CHUNK):
                    clause, params = self._in(part)
                    cursor.execute(
                        f"DELETE FROM clusterkit_reply WHERE request_id {clause}", params
                    )
                    cursor.execute(f"DELETE FROM clusterkit_message WHERE id {clause}", params)
                total += len(ids)

