"""The volatile transport: direct TCP between callers and runners, JSON frames.

A runner listens on ``RUNNER_HOST:RUNNER_PORT`` and advertises the address in its
``Runner`` row; callers keep one connection per runner and multiplex calls on it by
correlation id. One loopback hop each way is the floor a volatile call can reach (the
channel layer's send/receive round trip costs about ten times a Redis PING here).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import threading
from collections.abc import Awaitable, Callable

import msgspec

from . import frames
from .errors import RunnerUnavailable, Timeout

logger = logging.getLogger("clusterkit.transport")
Handler = Callable[[frames.Call], Awaitable[frames.Result | None]]


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    """The body of the next frame (raises ``IncompleteReadError`` at end of stream)."""
    header = await reader.readexactly(frames.HEADER.size)
    (size,) = frames.HEADER.unpack(header)
    if size > frames.MAX_FRAME:
        raise ConnectionError(f"frame of {size} bytes is over the limit")
    return await reader.readexactly(size)


class TransportServer:
    """Accepts caller connections and answers their calls through ``handler``."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.server: asyncio.Server | None = None
        self.tasks: set[asyncio.Future[None]] = set()

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen and return the bound ``(host, port)``."""
        self.server = await asyncio.start_server(self._serve, host, port)
        sock = self.server.sockets[0].getsockname()
        return str(sock[0]), int(sock[1])

    async def close(self) -> None:
        """Stop accepting and drop open connections."""
        if self.server is not None:
            self.server.close()
            for task in list(self.tasks):
                task.cancel()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)  # type: ignore[arg-type]
        try:
            while True:
                body = await read_frame(reader)
                try:
                    frame = frames.decoder.decode(body)
                except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                    writer.write(frames.pack(_malformed(body, exc)))
                    continue
                if isinstance(frame, frames.Ping):
                    writer.write(frames.pack(frames.Result(corr=frame.corr, ok=True)))
                elif isinstance(frame, frames.Call):
                    answer = asyncio.ensure_future(self._answer(frame, writer))
                    self.tasks.add(answer)  # type: ignore[arg-type]
                    answer.add_done_callback(self.tasks.discard)  # type: ignore[arg-type]
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.tasks.discard(task)  # type: ignore[arg-type]
            writer.close()

    async def _answer(self, call: frames.Call, writer: asyncio.StreamWriter) -> None:
        result = await self.handler(call)
        if result is not None and not writer.is_closing():
            writer.write(frames.pack(result))


def _malformed(body: bytes, exc: Exception) -> frames.Result:
    """An error reply to an undecodable frame, addressed to its ``corr`` if readable."""
    try:
        corr = int(msgspec.json.decode(body).get("corr", 0))
    except Exception:
        corr = 0
    return frames.Result(
        corr=corr, ok=False, error_type="MalformedMessage", error_message=str(exc)[:500]
    )


class Connection:
    """One caller-side connection to a runner, multiplexing calls."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.pending: dict[int, asyncio.Future[frames.Result]] = {}
        self.reading = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            while True:
                frame = frames.decoder.decode(await read_frame(self.reader))
                if isinstance(frame, frames.Result):
                    future = self.pending.pop(frame.corr, None)
                    if future is not None and not future.done():
                        future.set_result(frame)
        except Exception as exc:  # connection gone: fail everything waiting on it
            error = RunnerUnavailable(f"connection to runner lost: {exc or type(exc).__name__}")
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(error)
            self.pending.clear()
            self.writer.close()

    @property
    def alive(self) -> bool:
        return not self.reading.done() and not self.writer.is_closing()


class TransportClient:
    """Calls runners over TCP; lives on the process's background loop."""

    def __init__(self) -> None:
        self.connections: dict[str, Connection] = {}
        self.connecting: dict[str, asyncio.Future[Connection]] = {}
        self.counter = itertools.count(1)

    async def _connection(self, address: str) -> Connection:
        conn = self.connections.get(address)
        if conn is not None and conn.alive:
            return conn
        pending = self.connecting.get(address)
        if pending is None:
            pending = asyncio.ensure_future(self._open(address))
            self.connecting[address] = pending
        try:
            return await asyncio.shield(pending)
        finally:
            if pending.done():
                self.connecting.pop(address, None)

    async def _open(self, address: str) -> Connection:
        host, _, port = address.rpartition(":")
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 2.0)
        except (TimeoutError, OSError) as exc:
            raise RunnerUnavailable(f"runner at {address} is unreachable: {exc}") from None
        conn = Connection(reader, writer)
        self.connections[address] = conn
        return conn

    async def call(self, address: str, call: frames.Call) -> frames.Result | None:
        """Send ``call`` and wait for its result (``None`` for a discarded call)."""
        conn = await self._connection(address)
        call.corr = next(self.counter)
        future: asyncio.Future[frames.Result] | None = None
        if not call.discard:
            future = asyncio.get_running_loop().create_future()
            conn.pending[call.corr] = future
        conn.writer.write(frames.pack(call))
        if future is None:
            await conn.writer.drain()
            return None
        try:
            return await future
        finally:
            conn.pending.pop(call.corr, None)


client = TransportClient()


class _ThreadSockets(threading.local):
    """Blocking sockets of one caller thread, by runner address."""

    def __init__(self) -> None:
        self.socks: dict[str, socket.socket] = {}


_sockets = _ThreadSockets()
_corr = itertools.count(1 << 40)  # apart from the async client's ids


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks, got = [], 0
    while got < size:
        chunk = sock.recv(size - got)
        if not chunk:
            raise ConnectionError("the runner closed the connection")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def call_blocking(address: str, call: frames.Call, timeout: float) -> frames.Result | None:
    """Send ``call`` on this thread's own socket and wait for its result.

    Sync callers skip the hop to the background loop: one write and one read on a
    blocking socket is the shortest path to the runner and back.
    """
    sock = _sockets.socks.get(address)
    try:
        if sock is None:
            host, _, port = address.rpartition(":")
            sock = socket.create_connection((host, int(port)), timeout=2.0)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            _sockets.socks[address] = sock
        call.corr = next(_corr)
        sock.settimeout(timeout)
        sock.sendall(frames.pack(call))
        if call.discard:
            return None
        while True:
            (size,) = frames.HEADER.unpack(_recv_exactly(sock, frames.HEADER.size))
            frame = frames.decoder.decode(_recv_exactly(sock, size))
            if isinstance(frame, frames.Result) and frame.corr == call.corr:
                return frame
    except TimeoutError:
        _drop(address)
        raise Timeout(f"no reply from the runner at {address} in time") from None
    except (OSError, ConnectionError, msgspec.DecodeError) as exc:
        _drop(address)
        raise RunnerUnavailable(f"runner at {address} is unreachable: {exc}") from None


def _drop(address: str) -> None:
    sock = _sockets.socks.pop(address, None)
    if sock is not None:
        sock.close()
