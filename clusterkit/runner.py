"""The runner: hosts entities for the shards it leases and moves their messages.

One asyncio loop per runner. Database work runs on one dedicated thread (a Django
connection of its own); sync handlers run on a thread pool. The loops:

- *leases*: heartbeat, renew, acquire and release shards (:mod:`clusterkit.leases`);
- *claim*: take due messages of held shards in batches, in id order, into mailboxes;
- *commit*: group-commit finished replies in fenced transactions;
- *listen*: PostgreSQL ``LISTEN`` for new messages (polling is the fallback);
- *reaper*: passivate idle entities.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import logging
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import msgspec
from django.db import close_old_connections, connections

from . import context, frames, leases, logfilter, metrics, pruning, snowflake, tracing, wakeup
from .conf import cluster_settings
from .entity import Entity, registry
from .errors import ClusterError, InvalidPayload, MailboxFull, MalformedMessage, UnknownEntity
from .mailbox import Active, Envelope
from .models import ReplyStatus
from .replies import hub
from .storage import WAKE_CHANNEL, ClaimedMessage, Completion, Storage, claimed_rows, due_in
from .threads import DatabaseThreadPool
from .transport import TransportServer

logger = logging.getLogger("clusterkit.runner")
T = TypeVar("T")
ShardKey = tuple[str, int]
VERSION = "0.1.0"
REBALANCE = "-rebalance-"
BATCH_LIMIT = 256  # calls handed to a batched rpc's batch method at once

# Runners living in this process, by machine id: callers here skip the network.
local_runners: dict[int, Runner] = {}

# The runner whose loop this code runs on (set in Runner.run, inherited by its tasks).
_running: contextvars.ContextVar[Runner | None] = contextvars.ContextVar(
    "clusterkit_runner", default=None
)


async def in_handler_thread(func: Callable[..., T], *args: Any) -> T:
    """Run sync ``func`` with the caller's context on the runner's handler threads (the
    loop's default executor outside a runner), with a usable database connection."""

    def call() -> T:
        close_old_connections()
        return func(*args)

    runner = _running.get()
    pool = runner._handler_pool if runner is not None else None
    ctx = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(pool, ctx.run, call)


_headers_decoder = msgspec.json.Decoder(dict[str, str])
_json = msgspec.json.Encoder()


def _error_payload(exc: BaseException, with_traceback: bool = True) -> str:
    tb = "".join(traceback.format_exception(exc)) if with_traceback else ""
    name = type(exc).__name__
    error = {"type": name, "message": str(exc)[:2000], "traceback": tb[-8000:]}
    return _json.encode(error).decode()


class Stats:
    """Counters of what this runner did (shown by ``clusterkit status`` and metrics)."""

    __slots__ = ("failed", "fenced", "processed", "redelivered", "rejected", "retried")

    def __init__(self) -> None:
        self.processed = self.failed = self.retried = 0
        self.fenced = self.redelivered = self.rejected = 0


class Runner:
    """One runner process's worth of state; :meth:`run` until :meth:`stop`."""

    def __init__(self, groups: list[str] | None = None, alias: str = "default") -> None:
        self.groups = list(groups or cluster_settings.SHARD_GROUPS)
        self.alias = alias
        self.storage = Storage(alias)
        self.shards = int(cluster_settings.SHARDS_PER_GROUP)
        self.ttl = float(cluster_settings.SHARD_LEASE_TTL)
        self.max_resident = int(cluster_settings.MAX_RESIDENT_ENTITIES)
        self.runner_id = 0
        self.address = ""
        self.held: dict[ShardKey, int] = {}
        self.active: dict[tuple[str, str], Active] = {}
        self.in_flight: dict[int, ShardKey] = {}
        self.completions: list[Completion] = []
        self.stats = Stats()
        self.stopping = False
        self.unregistered = False
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._db_pool = DatabaseThreadPool(1, "clusterkit-db")
        self._claim_pool = DatabaseThreadPool(1, "clusterkit-claim")
        self._claim_conn: Any = None
        self._handler_pool = DatabaseThreadPool(
            int(cluster_settings.HANDLER_THREADS), "clusterkit-handler"
        )
        self._tasks: list[asyncio.Task[Any]] = []
        self._workers: set[asyncio.Future[None]] = set()
        self.singleton_tasks: dict[str, asyncio.Task[None]] = {}
        self.singleton_stops: dict[str, threading.Event] = {}
        self._last_renewal = 0.0
        self._started = time.monotonic()

    # -- plumbing --------------------------------------------------------------------

    async def db(self, fn: Callable[..., T], *args: Any, pool: Any = None) -> T:
        """Run ``fn`` on the database thread; a broken connection is dropped for a new one."""

        def call() -> T:
            try:
                self._prepare_connection()
                return fn(*args)
            except Exception:
                connections[self.alias].close()
                raise

        assert self.loop is not None
        return await self.loop.run_in_executor(pool or self._db_pool, call)

    def _prepare_connection(self) -> None:
        """On a new PostgreSQL connection: end a transaction left idle by a paused runner.

        If this process is stopped (SIGSTOP) inside a commit, the lease rows it locked
        would hold up the takeover of its shards; PostgreSQL ends such a session after
        half a lease lifetime, and the paused runner's late commit then fails (fenced).
        """
        conn = connections[self.alias]
        if conn.vendor == "postgresql" and conn.connection is None:
            conn.ensure_connection()
            timeout_ms = max(500, int(self.ttl * 500))
            with conn.cursor() as cursor:
                cursor.execute(f"SET idle_in_transaction_session_timeout = {timeout_ms}")

    async def claim_query(self, query: tuple[str, list[Any]] | None) -> list[Any]:
        """Run a claim-side query off the commit path and return its rows.

        On PostgreSQL it runs on the loop, on an async connection of its own with
        ``synchronous_commit = off`` (a lost read lease only redelivers a message sooner;
        replies are committed durably elsewhere), so a wake-up reaches the handler with
        no thread hop. On SQLite it runs on a thread of its own.
        """
        if query is None:
            return []
        if not self.storage.is_postgres:
            return await self.db(self._run_sync_query, query, pool=self._claim_pool)
        import psycopg

        from .replies import conninfo

        if self._claim_conn is None or self._claim_conn.closed:
            self._claim_conn = await psycopg.AsyncConnection.connect(
                conninfo(self.alias), autocommit=True
            )
            await self._claim_conn.execute("SET synchronous_commit = off")
        try:
            cursor = await self._claim_conn.execute(query[0], query[1])
            return await cursor.fetchall()
        except Exception:
            await self._claim_conn.close()
            self._claim_conn = None
            raise

    def _run_sync_query(self, query: tuple[str, list[Any]]) -> list[Any]:
        with connections[self.alias].cursor() as cursor:
            cursor.execute(*query)
            return list(cursor.fetchall())

    def _wake_claim(self, groups: Iterable[str] = ()) -> None:
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.claim_wake.set)

    # -- lifecycle -------------------------------------------------------------------

    async def run(self, install_signals: bool = False) -> None:
        """Register, serve until stopped, then drain and release everything."""
        self.loop = asyncio.get_running_loop()
        _running.set(self)
        self.claim_wake = asyncio.Event()
        self.commit_wake = asyncio.Event()
        self.lease_wake = asyncio.Event()
        self.stop_event = asyncio.Event()
        self.capacity = asyncio.Event()
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                self.loop.add_signal_handler(sig, self.stop)
        server = TransportServer(self.call_from)
        host, port = await server.start(
            cluster_settings.RUNNER_HOST, int(cluster_settings.RUNNER_PORT)
        )
        self.address = f"{cluster_settings.RUNNER_ADVERTISE_HOST or host}:{port}"
        await self.db(leases.ensure_shards, self.groups, self.shards)
        record = await self.db(
            leases.register, self.address, self.groups, cluster_settings.RUNNER_WEIGHT, VERSION
        )
        self.runner_id = record.machine_id
        snowflake.generator.machine_id = self.runner_id
        local_runners[self.runner_id] = self
        logfilter.process_runner.setdefault("id", self.runner_id)
        unsubscribe = wakeup.subscribe(self._wake_claim)
        logger.info("runner %s started at %s (pid %s, groups %s)", self.runner_id, self.address,
                    record.pid, ",".join(self.groups))
        await self._lease_tick()
        self.ready.set()
        self._tasks = [
            asyncio.ensure_future(coro)
            for coro in (
                self._lease_loop(),
                self._claim_loop(),
                self._commit_loop(),
                self._reaper_loop(),
                self._prune_loop(),
            )
        ]
        listener = asyncio.ensure_future(self._listen_loop())
        try:
            await self.stop_event.wait()
        finally:
            await self._drain()
            unsubscribe()
            await server.close()
            local_runners.pop(self.runner_id, None)
            if logfilter.process_runner.get("id") == self.runner_id:
                logfilter.process_runner.clear()
            self._stop_singletons(set(self.singleton_tasks))
            for task in [*self._tasks, *self._workers]:
                task.cancel()
            await asyncio.wait([*self._tasks, *self._workers, listener], timeout=5)
            await asyncio.to_thread(self._db_pool.shutdown)
            await asyncio.to_thread(self._claim_pool.shutdown)
            if self._claim_conn is not None:
                await self._claim_conn.close()
            await asyncio.to_thread(self._handler_pool.shutdown)

    def stop(self) -> None:
        """Ask the runner to drain and stop (safe from any thread)."""
        if self.loop is not None and not self.stopping:
            self.stopping = True
            self.loop.call_soon_threadsafe(self.stop_event.set)

    async def _drain(self) -> None:
        """Stop claiming, finish in-flight work up to DRAIN_TIMEOUT, release the leases."""
        self.stopping = True
        logger.info("runner %s draining: %d messages in flight, %d shards held", self.runner_id,
                    len(self.in_flight), len(self.held))
        with contextlib.suppress(Exception):
            await self.db(leases.mark_draining, self.runner_id)
            await self._lease_tick()  # hand over the idle shards now
            await self.db(self._announce_rebalance)
        deadline = time.monotonic() + float(cluster_settings.DRAIN_TIMEOUT)
        while (self.in_flight or self.completions) and time.monotonic() < deadline:
            self.commit_wake.set()
            await asyncio.sleep(0.01)
        await self._flush()
        self.unregistered = True
        try:
            released = len(self.held)
            await self.db(leases.unregister, self.runner_id)
            await self.db(self._announce_rebalance)
            logger.info("runner %s released its last %d shards", self.runner_id, released)
        except Exception:
            logger.warning("runner %s could not release its leases", self.runner_id, exc_info=True)
        logger.info("runner %s stopped", self.runner_id)

    def _announce_rebalance(self) -> None:
        if self.storage.is_postgres:
            with connections[self.alias].cursor() as cursor:
                cursor.execute("SELECT pg_notify(%s, %s)", [WAKE_CHANNEL, REBALANCE])

    # -- leases ----------------------------------------------------------------------

    async def _lease_loop(self) -> None:
        interval = float(cluster_settings.SHARD_LEASE_RENEW_INTERVAL)
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.lease_wake.wait(), interval)
            self.lease_wake.clear()
            # Also while draining: the shards with work in flight stay renewed until that
            # work is committed, and the others are handed over at once.
            if not self.unregistered:
                await self._lease_tick()

    async def _lease_tick(self) -> None:
        busy = set(self.in_flight.values())
        try:
            state = await self.db(
                leases.tick, self.runner_id, self.groups, self.shards, self.ttl, busy,
                self.stopping, len(self.active),
            )
        except Exception:
            logger.warning("runner %s: lease renewal failed", self.runner_id, exc_info=True)
            if time.monotonic() - self._last_renewal > self.ttl * 0.8 and self.held:
                logger.error("runner %s: leases about to expire, dropping all shards",
                             self.runner_id)
                self._lose(set(self.held))
            return
        if not state.alive and self.stopping:
            return
        if not state.alive:  # our row was removed as dead: come back as a new runner
            logger.warning("runner %s was unregistered by the cluster; re-registering",
                           self.runner_id)
            self._lose(set(self.held))
            record = await self.db(
                leases.register, self.address, self.groups, cluster_settings.RUNNER_WEIGHT, VERSION
            )
            local_runners.pop(self.runner_id, None)
            self.runner_id = record.machine_id
            local_runners[self.runner_id] = self
            snowflake.generator.machine_id = self.runner_id
            return
        self._last_renewal = time.monotonic()
        lost = {k for k, epoch in self.held.items() if state.held.get(k) != epoch}
        lost -= set(state.acquired)
        released = lost & set(state.released)
        if released:
            logger.info("runner %s released %d shards", self.runner_id, len(released))
        self._lose(lost - released)
        self._forget(released)
        metrics.leases_moved(state.acquired, released=released)
        self.held = state.held
        self._sync_singletons()
        if state.acquired:  # their read leases were reset as they were taken
            logger.info("runner %s acquired %d shards", self.runner_id, len(state.acquired))
            self.claim_wake.set()

    def _lose(self, shards: set[ShardKey]) -> None:
        """Forget shards whose lease was lost (not handed over): a warning and a metric."""
        if not shards:
            return
        logger.warning("runner %s lost %d shards", self.runner_id, len(shards))
        metrics.leases_moved((), lost=shards)
        self._forget(shards)

    def _forget(self, shards: set[ShardKey]) -> None:
        """Drop the entities and in-flight work of ``shards`` (it will be redelivered)."""
        if not shards:
            return
        for key, active in list(self.active.items()):
            if active.shard in shards:
                del self.active[key]
                for env in active.queue or ():
                    if env.future is not None and not env.future.done():
                        env.future.set_result(_unavailable(0, "the shard moved"))
                if active.queue:  # its worker stops after the handler in progress
                    active.queue.clear()
        for message_id, shard in list(self.in_flight.items()):
            if shard in shards:
                del self.in_flight[message_id]
        for shard in shards:
            self.held.pop(shard, None)
        self._sync_singletons()

    # -- claiming --------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        poll = float(cluster_settings.POLL_INTERVAL)
        batch = int(cluster_settings.CLAIM_BATCH_SIZE)
        limit = int(cluster_settings.MAX_IN_FLIGHT)
        read_lease_ms = int(float(cluster_settings.READ_LEASE) * 1000)
        while not self.stopping:
            room = min(batch, limit - len(self.in_flight))
            if room <= 0:
                self.capacity.clear()
                await self.capacity.wait()
                continue
            self.claim_wake.clear()
            try:
                claimed = await self._claim(room, read_lease_ms)
                for item in claimed:
                    self._dispatch(item)
                if len(claimed) >= room:
                    continue
                due_in = await self._next_due()
            except Exception:
                logger.warning("runner %s: claim failed", self.runner_id, exc_info=True)
                await asyncio.sleep(poll)
                continue
            timeout = poll if due_in is None else min(poll, due_in / 1000 + 0.001)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.claim_wake.wait(), timeout)

    def _held_shards(self, held: dict[ShardKey, int], group: str) -> list[int] | None:
        """The shards of ``group`` held, or ``None`` for all of them (no filter needed)."""
        shards = sorted(s for (g, s) in held if g == group)
        return None if len(shards) == self.shards else shards

    async def _claim(self, room: int, read_lease_ms: int) -> list[tuple[ClaimedMessage, int]]:
        """Claim due messages of every group held, each with the epoch it was claimed under."""
        claimed: list[tuple[ClaimedMessage, int]] = []
        held = dict(self.held)
        for group in self.groups:
            shards = self._held_shards(held, group)
            query = self.storage.claim_query(
                group, shards, room - len(claimed), read_lease_ms, self.runner_id
            )
            rows = claimed_rows(await self.claim_query(query))
            claimed.extend(
                (m, m.epoch if m.epoch >= 0 else held.get((m.shard_group, m.shard_id), -1))
                for m in rows
            )
        return claimed

    async def _next_due(self) -> int | None:
        """Milliseconds until the next scheduled message of a held shard is due."""
        due: int | None = None
        held = dict(self.held)
        for group in self.groups:
            query = self.storage.next_delivery_query(group, self._held_shards(held, group))
            rows = await self.claim_query(query)
            nxt = due_in(rows[0]) if rows else None
            if nxt is not None:
                due = nxt if due is None else min(due, nxt)
        return due

    def _dispatch(self, item: tuple[ClaimedMessage, int]) -> None:
        message, epoch = item
        shard = (message.shard_group, message.shard_id)
        if message.id in self.in_flight or epoch < 0:
            return
        self.in_flight[message.id] = shard
        if message.attempts > 1:
            self.stats.redelivered += 1
        wait = False
        try:
            headers = _headers_decoder.decode(message.headers)
            wait = headers.get("wait") == "1"
            cls = _entity_class(message.entity_type)
            spec = cls.spec(message.rpc)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self._complete(message, epoch, ReplyStatus.FAILURE,
                           _error_payload(MalformedMessage(f"bad headers: {exc}"), False), wait)
            return
        except ClusterError as exc:
            self._complete(message, epoch, ReplyStatus.FAILURE, _error_payload(exc, False), wait)
            return
        active = self._activate(cls, message.entity_id, shard)
        active.push(Envelope(spec, message.payload, headers, message, epoch))
        self._kick(active)

    # -- volatile calls --------------------------------------------------------------

    async def call_from(self, call: frames.Call) -> frames.Result | None:
        """Answer a volatile call (from the transport, or a caller in this process)."""
        if self.loop is not asyncio.get_running_loop():
            assert self.loop is not None
            return await asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(self.call_from(call), self.loop)
            )
        try:
            cls = _entity_class(call.entity_type)
            spec = cls.spec(call.rpc)
            if spec.persisted:
                raise InvalidPayload(f"{call.rpc} is persisted; it is not taken over the transport")
        except ClusterError as exc:
            return _failure(call.corr, exc)
        from .sharding import shard_for

        shard = (cls.group_for(call.entity_id), shard_for(call.entity_id, self.shards))
        if self.stopping or shard not in self.held:
            return _unavailable(call.corr, f"runner {self.runner_id} does not hold {shard}")
        active = self._activate(cls, call.entity_id, shard)
        if not spec.exclusive:
            return await self._beside(active, spec, call)
        if active.pending() >= cls.capacity():
            self.stats.rejected += 1
            metrics.for_entity(cls.entity_type).mailbox_full.inc()
            return _failure(call.corr, MailboxFull(f"{cls.entity_type}/{call.entity_id} is full"))
        assert self.loop is not None
        future: asyncio.Future[frames.Result] = self.loop.create_future()
        envelope = Envelope(spec, bytes(call.payload), dict(call.headers), None, 0, future)
        if not active.queue and active.running < cls.concurrency:
            await self._inline(active, envelope)  # idle: handle it here, no extra task
        else:
            active.push(envelope)
            self._kick(active)
        result = await future
        if call.discard:
            return None
        result.corr = call.corr
        return result

    async def _beside(self, active: Active, spec: Any, call: frames.Call) -> frames.Result | None:
        """Run a non-exclusive rpc now, next to the instance's mailbox (no retries)."""
        try:
            kwargs = spec.decode_args(bytes(call.payload))
            if active.instance is None:
                active.instance = active.cls.activate(active.entity_id)
            ctx = context.from_headers(dict(call.headers), None)
            payload = spec.encode_reply(await self._invoke(active.instance, spec, kwargs, ctx))
        except Exception as exc:
            return None if call.discard else _failure(call.corr, exc)
        if call.discard:
            return None
        return frames.Result(corr=call.corr, ok=True, payload=msgspec.Raw(payload))

    # -- handling --------------------------------------------------------------------

    def _activate(self, cls: type[Entity], entity_id: str, shard: ShardKey) -> Active:
        """The live instance of an entity, most recently used last (the LRU order)."""
        key = (cls.entity_type, entity_id)
        active = self.active.pop(key, None)
        if active is None:
            active = Active(cls, entity_id, shard)
            if len(self.active) >= self.max_resident:
                self._evict()
        self.active[key] = active
        return active

    def _evict(self) -> None:
        """Passivate the least recently used idle entities to make room for one more."""
        now = time.monotonic()
        excess = len(self.active) - self.max_resident + 1
        for key in list(itertools.islice(self.active, max(excess * 4, 64))):
            if excess <= 0:
                break
            if self.active[key].idle_for(now) > 0:
                del self.active[key]
                excess -= 1

    def _kick(self, active: Active) -> None:
        while active.queue and active.running < active.cls.concurrency:
            active.running += 1
            worker = asyncio.ensure_future(self._work(active))
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)

    async def _inline(self, active: Active, envelope: Envelope) -> None:
        """Handle one envelope in the caller's task, as a worker of ``active``."""
        active.running += 1
        active.busy += 1
        active.last_used = time.monotonic()
        try:
            await self._handle(active, envelope)
        finally:
            active.busy -= 1
            active.running -= 1
            active.last_used = time.monotonic()
        self._kick(active)  # whatever queued up meanwhile

    async def _work(self, active: Active) -> None:
        try:
            while active.queue:
                envelope = active.queue.popleft()
                batch = [envelope]
                if envelope.spec.batch is not None and envelope.message is not None:
                    while (active.queue and len(batch) < BATCH_LIMIT
                           and active.queue[0].spec is envelope.spec
                           and active.queue[0].message is not None):
                        batch.append(active.queue.popleft())
                active.busy += 1
                try:
                    if len(batch) > 1:
                        await self._handle_batch(active, batch)
                    else:
                        await self._handle(active, envelope)
                finally:
                    active.busy -= 1
        finally:
            active.running -= 1
            active.last_used = time.monotonic()

    async def _handle(self, active: Active, env: Envelope) -> None:
        spec = env.spec
        m = metrics.for_entity(active.cls.entity_type)
        message = env.message
        if message is not None:
            if message.attempts > 1:
                m.redelivered.inc()
            else:  # from stored (or due) to started
                since = max(snowflake.timestamp_ms(message.id), message.deliver_at or 0)
                m.delivery.observe(max(0.0, time.time() - since / 1000))
        try:
            kwargs = spec.decode_args(env.payload)
        except InvalidPayload as exc:
            m.failed.inc()
            self._finish(env, ReplyStatus.FAILURE, _error_payload(exc, False), exc)
            return
        ctx = context.from_headers(
            env.headers,
            context.ClusterState(
                active.shard[0], active.shard[1], self.runner_id, active.cls.entity_type,
                active.entity_id,
            ),
        )
        policy = None
        attempt = 0
        while True:
            attempt += 1
            try:
                if active.instance is None:
                    active.instance = active.cls.activate(active.entity_id)
                started = time.perf_counter()
                try:
                    result = await self._invoke(active.instance, spec, kwargs, ctx)
                finally:
                    m.handler.observe(time.perf_counter() - started)
                payload = spec.encode_reply(result)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._gone(active, env):
                    return
                policy = policy or active.cls.retry_policy()
                if attempt < policy.max_attempts and not isinstance(exc, InvalidPayload):
                    self.stats.retried += 1
                    m.retried.inc()
                    logger.info("%s/%s.%s failed (attempt %d): %r; retrying",
                                active.cls.entity_type, active.entity_id, spec.name, attempt, exc)
                    await asyncio.sleep(policy.delay(attempt))
                    if self._gone(active, env):
                        return
                    continue
                self.stats.failed += 1
                m.failed.inc()
                logger.warning("%s/%s.%s failed after %d attempts: %r",
                               active.cls.entity_type, active.entity_id, spec.name, attempt, exc)
                self._finish(env, ReplyStatus.FAILURE, _error_payload(exc), exc)
                return
            self._finish(env, ReplyStatus.SUCCESS, payload, None)
            m.processed.inc()
            return

    async def _handle_batch(self, active: Active, batch: list[Envelope]) -> None:
        """Hand consecutive calls of a batched rpc to its batch method together; when it
        fails, each call is handled on its own (with the rpc's retries)."""
        spec = batch[0].spec
        assert spec.batch is not None
        m = metrics.for_entity(active.cls.entity_type)
        try:
            calls = [spec.decode_args(env.payload) for env in batch]
            ctx = context.from_headers(
                batch[0].headers,
                context.ClusterState(
                    active.shard[0], active.shard[1], self.runner_id, active.cls.entity_type,
                    active.entity_id,
                ),
            )
            if active.instance is None:
                active.instance = active.cls.activate(active.entity_id)
            started = time.perf_counter()
            with context.use(ctx):
                results = await getattr(active.instance, spec.batch)(calls)
            m.handler.observe(time.perf_counter() - started)
            if len(results) != len(batch):
                raise ValueError(f"{spec.batch} returned {len(results)} results for "
                                 f"{len(batch)} calls")
            payloads = [spec.encode_reply(result) for result in results]
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.info("%s/%s.%s: a batch of %d failed (%r); handling them one by one",
                        active.cls.entity_type, active.entity_id, spec.batch, len(batch), exc)
            for env in batch:
                if not self._gone(active, env):
                    await self._handle(active, env)
            return
        for env, payload in zip(batch, payloads, strict=True):
            self._finish(env, ReplyStatus.SUCCESS, payload, None)
            m.processed.inc()

    def _gone(self, active: Active, env: Envelope) -> bool:
        """True when the entity's shard was lost meanwhile: its result must not be used."""
        return env.message is not None and env.message.id not in self.in_flight

    async def _invoke(
        self, instance: Entity, spec: Any, kwargs: dict[str, Any], ctx: context.RequestContext
    ) -> Any:
        method = spec.func.__get__(instance)
        entity_type, entity_id = type(instance).entity_type, instance.entity_id
        if spec.is_async:
            with context.use(ctx), tracing.message_span(
                "handle", entity_type, spec.name, entity_id, ctx.traceparent
            ):
                return await method(**kwargs)

        def run_sync() -> Any:
            close_old_connections()
            with context.use(ctx), tracing.message_span(
                "handle", entity_type, spec.name, entity_id, ctx.traceparent
            ):
                return method(**kwargs)

        assert self.loop is not None
        return await self.loop.run_in_executor(self._handler_pool, run_sync)

    def _finish(
        self, env: Envelope, status: int, payload: bytes | str, exc: BaseException | None
    ) -> None:
        text = payload.decode() if isinstance(payload, bytes) else payload
        if env.message is not None:
            self._complete(env.message, env.epoch, status, text, env.headers.get("wait") == "1")
        elif env.future is not None and not env.future.done():
            if status == ReplyStatus.SUCCESS:
                env.future.set_result(frames.Result(corr=0, ok=True, payload=msgspec.Raw(payload)))
            else:
                assert exc is not None
                env.future.set_result(_failure(0, exc))
        if status == ReplyStatus.SUCCESS:
            self.stats.processed += 1

    def _complete(
        self, message: ClaimedMessage, epoch: int, status: int, payload: str, notify: bool
    ) -> None:
        self.completions.append(
            Completion(
                message.id, snowflake.next_id(), message.shard_group, message.shard_id, epoch,
                int(status), payload, notify, message.entity_type,
            )
        )
        self.commit_wake.set()

    # -- committing ------------------------------------------------------------------

    async def _commit_loop(self) -> None:
        interval = float(cluster_settings.COMMIT_INTERVAL)
        while True:
            await self.commit_wake.wait()
            self.commit_wake.clear()
            if interval and len(self.completions) < 256:
                await asyncio.sleep(interval)
            await self._flush()

    async def _flush(self) -> None:
        if not self.completions:
            return
        batch, self.completions = self.completions, []
        try:
            committed, fenced = await self.db(self.storage.commit, self.runner_id, batch)
        except Exception:
            logger.warning("runner %s: commit failed; retrying", self.runner_id, exc_info=True)
            self.completions[:0] = batch
            await asyncio.sleep(0.2)
            self.commit_wake.set()
            return
        for c in committed:
            self.in_flight.pop(c.request_id, None)
            hub.resolve(c.request_id, (c.status, c.payload))
        if fenced:
            self.stats.fenced += len(fenced)
            for c in fenced:
                metrics.for_entity(c.entity_type).fenced.inc()
            logger.warning("runner %s: %d results fenced (lease lost); not committed",
                           self.runner_id, len(fenced))
            # Forget only shards still believed held at the fenced epoch: one taken
            # back meanwhile (a new epoch) keeps its fresh state.
            self._lose({
                (c.shard_group, c.shard_id) for c in fenced
                if self.held.get((c.shard_group, c.shard_id)) == c.epoch
            })
            for c in fenced:
                self.in_flight.pop(c.request_id, None)
            with contextlib.suppress(Exception):
                await self.db(self.storage.release, [c.request_id for c in fenced])
            self.lease_wake.set()
        self.capacity.set()

    # -- singletons ------------------------------------------------------------------

    def _sync_singletons(self) -> None:
        """Run the singletons whose shard this runner holds; stop the others."""
        from .singleton import singletons

        if self.loop is None:
            return
        should = {
            name for name, spec in singletons.items()
            if not self.stopping and spec.shard(self.shards) in self.held
        }
        self._stop_singletons(set(self.singleton_tasks) - should)
        for name in should - set(self.singleton_tasks):
            stop = threading.Event()
            self.singleton_stops[name] = stop
            task = asyncio.ensure_future(self._run_singleton(singletons[name], stop))
            self.singleton_tasks[name] = task
            logger.info("runner %s started singleton %s", self.runner_id, name)

    def _stop_singletons(self, names: set[str]) -> None:
        for name in names:
            task = self.singleton_tasks.pop(name, None)
            self.singleton_stops.pop(name, threading.Event()).set()
            if task is not None:
                task.cancel()
                logger.info("runner %s stopped singleton %s", self.runner_id, name)

    async def _run_singleton(self, spec: Any, stop: threading.Event) -> None:
        """Run ``spec`` until it must stop, restarting it with backoff when it ends."""
        from .singleton import RESTART_POLICY

        group, shard = spec.shard(self.shards)
        ctx = context.RequestContext(
            cluster=context.ClusterState(
                group, shard, self.runner_id, "singleton", spec.name, is_leader=True
            )
        )
        attempt = 0
        while not stop.is_set():
            started = time.monotonic()
            try:
                with context.use(ctx):
                    if spec.is_async:
                        await spec.func()
                    else:
                        args = (stop,) if spec.takes_stop_event else ()
                        assert self.loop is not None
                        await self.loop.run_in_executor(None, spec.func, *args)
                logger.warning("singleton %s returned; restarting", spec.name)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("singleton %s crashed; restarting", spec.name)
            attempt = 1 if time.monotonic() - started > 60 else attempt + 1
            await asyncio.sleep(RESTART_POLICY.delay(attempt))

    # -- wake-ups and passivation ----------------------------------------------------

    async def _listen_loop(self) -> None:
        if not self.storage.is_postgres:
            return
        import psycopg

        from .replies import conninfo

        # Not cancelled from outside: cancelling psycopg's notifies() can leave the
        # connection locked, so the loop wakes every second and ends when stopping.
        while not self.stopping:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    conninfo(self.alias), autocommit=True
                )
                async with conn:
                    await conn.execute(f"LISTEN {WAKE_CHANNEL}")
                    self.claim_wake.set()
                    while not self.stopping:
                        async for note in conn.notifies(timeout=1.0):
                            if note.payload == REBALANCE:
                                self.lease_wake.set()
                            else:
                                self.claim_wake.set()
            except Exception:
                logger.info("runner %s: LISTEN connection lost; reconnecting", self.runner_id)
                await asyncio.sleep(0.5)

    async def _reaper_loop(self) -> None:
        while True:
            idle_times = {cls: cls.idle_seconds() for cls in registry.values()}
            period = max(0.25, min(5.0, min(idle_times.values(), default=60.0) / 2))
            await asyncio.sleep(period)
            now = time.monotonic()
            for key, active in list(self.active.items()):
                if active.idle_for(now) >= idle_times.get(active.cls, 60.0):
                    del self.active[key]


    async def _prune_loop(self) -> None:
        """Every ``PRUNE_INTERVAL``, the holder of the first shard runs the pruners."""
        while True:
            await asyncio.sleep(float(cluster_settings.PRUNE_INTERVAL))
            if (self.groups[0], 0) not in self.held:
                continue
            try:
                counts = await self.db(pruning.prune_all)
                logger.info("runner %s pruned %s", self.runner_id,
                            ", ".join(f"{n} {name}" for name, n in counts.items()))
            except Exception:
                logger.warning("runner %s: pruning failed", self.runner_id, exc_info=True)


def _entity_class(name: str) -> type[Entity]:
    cls = registry.get(name)
    if cls is None:
        raise UnknownEntity(f"no entity type {name!r} is registered")
    return cls


def _failure(corr: int, exc: BaseException) -> frames.Result:
    return frames.Result(
        corr=corr, ok=False, error_type=type(exc).__name__, error_message=str(exc)[:2000]
    )


def _unavailable(corr: int, message: str) -> frames.Result:
    return frames.Result(corr=corr, ok=False, error_type="RunnerUnavailable", error_message=message)
