"""Running the application on its TLS socket, with every client stall bounded in time.

``web.run_app`` cannot set asyncio's TLS handshake timeout (60 s, fixed), and aiohttp bounds
neither a request that never finishes nor, by itself, a body that trickles in. So a client that
stalls a handshake, a request head or a body held a connection (about 50 KiB of buffers on
uvloop, 280 KiB on asyncio's loop, most of it the TLS read buffer) for a minute or, for a body,
forever. Here each stall has a flag
(``adapter.config.ConnectionConfig``):

- the TLS handshake, and the closing TLS exchange, within ``--tls-handshake-timeout``;
- a complete request head within ``--idle-timeout`` of the handshake or of the previous response
  (aiohttp's keep-alive timer, which data trickling in does not extend);
- the answer within ``--request-timeout``, else a 504 ``Timeout`` ``Status``, as kube-apiserver
  answers (``RequestDeadlines``, which ``adapter.app`` applies to every request): this bounds a
  body that trickles in;
- the answer written out within ``--write-timeout``, else the connection is dropped: this
  bounds a client that stops reading a large answer (``Connections``).

And in bytes: a request head may carry 128 headers of 8 KB each, which aiohttp holds parsed
(about 2.5 MB resident for a 1 MB head) until the head is complete; 200 connections each
holding an unfinished head took 480 MB. The bytes received of requests not yet whole (heads,
and bodies, which wait in aiohttp's buffers until read) on all connections together stay
within ``ConnectionConfig.receiving_budget_bytes``: past it, the connections holding the most
are dropped (``Connections.received``).

And the number of open connections is bounded (``--max-connections``): one more is closed at
once, before its TLS handshake (``BoundedTlsSite`` listens on plain TCP and starts TLS itself).
A request aiohttp cannot parse is answered with a ``Status`` too (``StatusRequestHandler``).

SIGTERM and SIGINT stop the server gracefully, as ``web.run_app`` does. While it serves, the
heap's free memory is handed back to the kernel when a lot of it accumulates (``adapter.heap``):
the buffers of connections that closed, above all.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import json
import logging
import socket
import ssl
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from http import HTTPStatus
from typing import Any, cast

from aiohttp import web
from aiohttp.http_parser import RawRequestMessage
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from adapter import background, errors, eventloop, garbage, heap
from adapter.config import ConnectionConfig, ServerConfig

logger = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_SECONDS = 5.0
"""On SIGTERM, requests in progress get this long to finish."""
SWEEP_INTERVAL_SECONDS = 1.0
"""How often requests are checked against the request timeout."""
RELEASE_CHECK_SECONDS = 2.0
"""How often the heap is checked for free memory to hand back (``heap.FreedMemory``)."""


class RequestDeadlines:
    """Ends requests that run longer than the request timeout, with a 504 ``Timeout``.

    A timer per request (``asyncio.timeout``) measured 15-25 µs here, a real share of a push's
    own cost, so the request middleware (``adapter.app``) only notes when each request started
    (``begin``) and a sweep once a second cancels the overdue ones: a request ends between one
    timeout and one timeout plus a second. Requests are known by their task, which the sweep
    cancels: ``asyncio.current_task()``, the task aiohttp runs the handler in (``request.task``
    is the connection's task, which awaits it).
    """

    def __init__(self, timeout_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout_seconds = timeout_seconds
        self._clock = clock
        self._started: dict[asyncio.Task[object], float] = {}
        self._overdue: set[asyncio.Task[object]] = set()

    def begin(self) -> asyncio.Task[object]:
        """Track the current request from now on; ``end`` it with the task returned."""
        task = asyncio.current_task()
        assert task is not None
        self._started[task] = self._clock()
        return task

    def end(self, task: asyncio.Task[object]) -> None:
        """Stop tracking a request ``begin`` returned."""
        del self._started[task]
        self._overdue.discard(task)

    def timed_out(self, task: asyncio.Task[object]) -> errors.ApiError | None:
        """For a request cancelled by ``sweep``, its 504 (and the cancellation is withdrawn);
        None for any other cancellation (a client that went away), which must propagate."""
        if task not in self._overdue:
            return None
        task.uncancel()
        return errors.ApiError(
            504,
            "Timeout",
            "the request did not complete within the allotted timeout of"
            f" {self.timeout_seconds:g}s",
        )

    def sweep(self) -> None:
        """Cancel every request older than the timeout (once)."""
        oldest = self._clock() - self.timeout_seconds
        for task, started in list(self._started.items()):
            if started < oldest and task not in self._overdue:
                self._overdue.add(task)
                task.cancel()

    async def lifetime(self, app: web.Application) -> AsyncIterator[None]:
        """A ``cleanup_ctx`` running the sweep once a second while the application runs."""
        async with background.running(background.every(SWEEP_INTERVAL_SECONDS, self.sweep)):
            yield


class Connections:
    """The open connections: at most ``max_connections``, each dropped when its answer is not
    written out within the write timeout.

    A connection is counted from the moment it is accepted, before its TLS handshake (each
    holds buffers of up to a few hundred KB from then on, and costs no credentials to open),
    so one beyond the limit is closed at once, and counted in ``refused``. Once its handshake
    is done it is tracked: ``sweep`` (once a second) aborts a connection that has had bytes it
    could not send, and sent none of them, for the write timeout (a client that stopped
    reading its answer), and counts it in ``write_timeouts``. Plain counters, read by
    ``adapter.telemetry`` at scrape time.
    """

    def __init__(self, limits: ConnectionConfig, clock: Callable[[], float] = time.monotonic):
        self.limit = limits.max_connections
        self.write_timeout_seconds = limits.write_timeout_seconds
        self.receiving_budget_bytes = limits.receiving_budget_bytes
        self._clock = clock
        self.open = 0
        self.refused = 0
        self.write_timeouts = 0
        self.receiving_bytes = 0
        """Bytes received and not yet parsed, on all connections (``received``)."""
        self.receiving_dropped = 0
        self._writing: dict[asyncio.BaseTransport, tuple[float, int] | None] = {}
        """Each tracked transport: None, or since when its peer has taken none of its unsent
        bytes, and how many there were at the last sweep."""
        self._receiving: dict[asyncio.BaseTransport, int] = {}
        """Each tracked transport's bytes received less those of the heads parsed and the
        bodies complete."""

    def admit(self) -> bool:
        """Count one new connection; False (and counted as refused) when the limit is reached."""
        if self.open >= self.limit:
            self.refused += 1
            return False
        self.open += 1
        return True

    def track(self, transport: asyncio.BaseTransport) -> None:
        """Watch an admitted connection's writes once its TLS is up (``release`` ends it)."""
        self._writing[transport] = None

    def release(self, transport: asyncio.BaseTransport | None = None) -> None:
        """An admitted connection ended (or its handshake failed)."""
        self.open -= 1
        if transport is not None:
            self._writing.pop(transport, None)
            self.receiving_bytes -= self._receiving.pop(transport, 0)

    def received(self, transport: asyncio.BaseTransport, size: int) -> None:
        """Count ``size`` bytes that ``transport`` received (negative: the bytes of request
        heads parsed from them, and of bodies complete). Past the budget, the connections
        holding the most bytes not yet parsed are aborted, and counted in
        ``receiving_dropped``: those of a client holding unfinished heads or bodies, not the
        few bytes of a request arriving whole.

        A connection's count stops at zero: a head whose values had no space after the colon
        takes a byte less per header than it is counted, and no client may bank the
        difference for a later head."""
        before = self._receiving.get(transport, 0)
        after = max(0, before + size)
        self._receiving[transport] = after
        self.receiving_bytes += after - before
        while self.receiving_bytes > self.receiving_budget_bytes:
            largest = max(self._receiving, key=self._receiving.__getitem__)
            self.receiving_bytes -= self._receiving.pop(largest)
            self.receiving_dropped += 1
            largest.abort()

    def sweep(self) -> None:
        """Abort the connections that have taken none of their answer for the write timeout."""
        now = self._clock()
        for transport, stall in list(self._writing.items()):
            transport = cast(asyncio.WriteTransport, transport)
            if transport.is_closing():
                continue
            unsent = unsent_bytes(transport)
            if not unsent:
                self._writing[transport] = None
            elif stall is None or unsent < stall[1]:  # new data, or progress since last time
                self._writing[transport] = (now, unsent)
            elif now - stall[0] > self.write_timeout_seconds:
                self.write_timeouts += 1
                transport.abort()
            else:
                self._writing[transport] = (stall[0], unsent)

    async def lifetime(self, app: web.Application) -> AsyncIterator[None]:
        """A ``cleanup_ctx`` running the sweep once a second while the application runs."""
        async with background.running(background.every(SWEEP_INTERVAL_SECONDS, self.sweep)):
            yield


def unsent_bytes(transport: asyncio.WriteTransport) -> int:
    """Bytes written to ``transport`` that could not be sent yet: the peer's window is full.

    The TLS transport's own buffer, plus the bytes in the socket's kernel send queue not sent
    yet (Linux ``SIOCOUTQNSD``; sent but unacknowledged bytes do not count): the TLS layer
    hands whole answers to the socket transport beneath it, whose buffer only grows once the
    kernel's is full, so the kernel's queue is where a client that stopped reading shows.
    """
    size = transport.get_write_buffer_size()
    sock = transport.get_extra_info("socket")
    if sock is not None and sys.platform == "linux":
        with contextlib.suppress(OSError, ValueError):
            queued = fcntl.ioctl(sock.fileno(), _SIOCOUTQNSD, b"\0\0\0\0")
            size += int.from_bytes(queued, sys.byteorder, signed=True)
    return size


_SIOCOUTQNSD = 0x894B
"""linux/sockios.h: the bytes of a TCP socket's send queue that are not sent yet."""


CONNECTIONS = web.AppKey("connections", Connections)
"""The application's ``Connections``, so that its telemetry can read them."""

_STATUS_REASONS = {400: "BadRequest", 413: "RequestEntityTooLarge", 414: "RequestURITooLong"}


def _client_error(status: int, message: str | None) -> errors.ApiError:
    """The ``Status`` of a request aiohttp refused: the kind of problem only, as what follows a
    colon in aiohttp's message quotes the request (header values included)."""
    try:
        known = HTTPStatus(status)
    except ValueError:
        return errors.ApiError(status, "BadRequest", "the request is not valid HTTP/1.1")
    reason = _STATUS_REASONS.get(status, known.phrase.replace(" ", ""))
    text = " ".join((message or known.description).split(":")[0].split())
    return errors.ApiError(status, reason, f"the request is not valid HTTP/1.1: {text[:120]}")


def _head_bytes(message: object) -> int:
    """The bytes a parsed request head took on the wire: the request line and the headers as
    aiohttp keeps them, without the white space around values (counted as one space). 0 for
    what is not a request (a parse error)."""
    if not isinstance(message, RawRequestMessage):
        return 0
    headers = message.raw_headers
    return (
        len(message.method)
        + len(message.path)
        + len("  HTTP/1.1\r\n\r\n")
        + len(": \r\n") * len(headers)
        + sum(map(len, itertools.chain.from_iterable(headers)))
    )


class StatusRequestHandler(RequestHandler):
    """aiohttp's connection protocol, with two changes: a request aiohttp cannot parse (or
    answers itself with an error) gets a Kubernetes ``Status`` document, as every other error
    does, instead of plain text; and the connection's end is reported to ``Connections``."""

    __slots__ = ("_body", "_connections")

    def __init__(self, manager: web.Server, connections: Connections, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._connections = connections
        self._body: StreamReader | None = None
        """The body of the last request while it is still arriving (``data_received``)."""

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        super().handle_error(request, status, exc, message)  # logs; refuses once answering
        error = _client_error(status, message) if status < 500 else errors.internal_error()
        response = web.Response(
            status=status,
            body=json.dumps(error.status_body(), separators=(",", ":")).encode(),
            content_type="application/json",
        )
        response.force_close()
        return response

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._connections.track(transport)
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        """Parse ``data`` as aiohttp does, its bytes counted (``Connections.received``) until
        the request heads they hold are parsed and the bodies they hold complete: past the
        budget, this connection may be dropped."""
        transport = self.transport
        assert transport is not None  # data comes only once the connection is made
        connections = self._connections
        connections.received(transport, len(data))
        if transport.is_closing():
            return
        before = self._request_count
        super().data_received(data)
        parsed = 0
        body = self._body
        if body is not None and body.is_eof():
            parsed += body.total_bytes
            body = None
        if self._request_count != before:  # new requests, the last ones queued
            queued = self._messages
            for message, payload in itertools.islice(
                reversed(queued), self._request_count - before
            ):
                parsed += _head_bytes(message)
                if payload.is_eof():
                    parsed += payload.total_bytes
                else:  # the last request's body, still arriving
                    body = payload
        self._body = body
        if parsed:
            connections.received(transport, -parsed)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.transport is not None:  # it was made (a handshake that failed never is)
            self._connections.release(self.transport)
        super().connection_lost(exc)


class _Listener(asyncio.AbstractServer):
    """A listening socket that hands each accepted connection to ``on_accept`` as a plain
    socket, before anything is read from it (``BoundedTlsSite`` decides, then starts TLS)."""

    def __init__(
        self, sock: socket.socket, backlog: int, on_accept: Callable[[socket.socket], None]
    ) -> None:
        self._sock = sock
        self._backlog = backlog
        self._on_accept = on_accept
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._accept_ready)

    def _accept_ready(self) -> None:
        if self._sock.fileno() < 0:  # closed while this callback waited
            return
        for _ in range(self._backlog):  # then let the rest of the loop run
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:  # out of descriptors: try again in a second
                logger.warning("cannot accept connections for now: %s", error)
                self._loop.remove_reader(self._sock.fileno())
                self._loop.call_later(1.0, self._resume)
                return
            conn.setblocking(False)
            self._on_accept(conn)

    def _resume(self) -> None:
        if self._sock.fileno() >= 0:
            self._loop.add_reader(self._sock.fileno(), self._accept_ready)

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return (self._sock,) if self._sock.fileno() >= 0 else ()

    def close(self) -> None:
        if self._sock.fileno() >= 0:
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()

    async def wait_closed(self) -> None:
        return None

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self._sock.fileno() >= 0

    async def start_serving(self) -> None:
        return None

    async def serve_forever(self) -> None:
        raise NotImplementedError("serve with BoundedTlsSite")


class BoundedTlsSite(web.BaseSite):
    """A TLS site with a bounded number of connections and time-limited TLS handshakes and
    closing exchanges. It accepts connections itself, so that one beyond the limit is closed
    before its handshake (``create_server(ssl=...)`` only hands a connection over after it),
    and starts TLS on the others (``connect_accepted_socket``)."""

    __slots__ = (
        "_handler_kwargs",
        "_handshake_timeout",
        "_host",
        "_port",
        "connections",
        "handshakes",
    )

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext,
        handshake_timeout_seconds: float,
        connections: Connections,
        **handler_kwargs: Any,
    ) -> None:
        """``handler_kwargs`` go to each connection's ``RequestHandler`` (``keepalive_timeout``,
        ``access_log``...), as ``AppRunner`` passes its own to the ones it makes."""
        super().__init__(runner, ssl_context=ssl_context)
        self._host, self._port = host, port
        self._handshake_timeout = handshake_timeout_seconds
        self._handler_kwargs = handler_kwargs
        self.connections = connections
        self.handshakes: set[asyncio.Task[None]] = set()

    @property
    def name(self) -> str:
        return f"https://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.create_server((self._host, self._port), family=family, backlog=self._backlog)
        sock.setblocking(False)
        self._server = _Listener(sock, self._backlog, self._admit)

    async def stop(self) -> None:
        for handshake in list(self.handshakes):
            handshake.cancel()
        await super().stop()

    def _admit(self, conn: socket.socket) -> None:
        if not self.connections.admit():
            conn.close()
            return
        task = asyncio.ensure_future(self._start_tls(conn))
        self.handshakes.add(task)
        task.add_done_callback(self.handshakes.discard)

    async def _start_tls(self, conn: socket.socket) -> None:
        """Run the TLS handshake; aiohttp's protocol gets the connection once it is done."""
        server = self._runner.server
        assert server is not None
        handler = StatusRequestHandler(
            server, self.connections, loop=asyncio.get_running_loop(), **self._handler_kwargs
        )
        try:
            await asyncio.get_running_loop().connect_accepted_socket(
                lambda: handler,
                conn,
                ssl=self._ssl_context,
                ssl_handshake_timeout=self._handshake_timeout,
                ssl_shutdown_timeout=self._handshake_timeout,
            )
        except BaseException as error:  # a failed, timed-out or cancelled handshake
            conn.close()
            self.connections.release()
            if not isinstance(error, Exception):
                raise
            logger.debug("TLS handshake failed: %r", error)


def run_server(
    app: web.Application | Awaitable[web.Application],
    config: ServerConfig,
    ssl_context: ssl.SSLContext,
    announce: Callable[[], None],
) -> None:
    """Serve ``app`` (or the application it resolves to) on the configured address, with the
    connection limits of ``config``, on the configured event loop, until SIGTERM or SIGINT."""
    limits = config.connections

    async def serve() -> None:
        application = app if isinstance(app, web.Application) else await app
        connections = application.get(CONNECTIONS) or Connections(limits)
        handler_kwargs: dict[str, Any] = {
            "keepalive_timeout": limits.idle_timeout_seconds,
            "access_log": None,
        }
        runner = web.AppRunner(
            application,
            handle_signals=True,
            shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS,
            **handler_kwargs,
        )
        await runner.setup()
        try:
            await BoundedTlsSite(
                runner,
                config.bind_address,
                config.secure_port,
                ssl_context,
                limits.tls_handshake_timeout_seconds,
                connections,
                **handler_kwargs,
            ).start()
            frozen = garbage.freeze_startup_objects()
            logger.debug("moved %d start-up objects out of the collector's way", frozen)
            announce()
            freed = heap.FreedMemory()
            async with background.running(
                background.every(RELEASE_CHECK_SECONDS, freed.release_if_grown)
            ):
                await asyncio.Event().wait()  # until a signal raises GracefulExit
        finally:
            await runner.cleanup()

    with contextlib.suppress(web.GracefulExit, KeyboardInterrupt):
        eventloop.run(serve(), config.event_loop)
