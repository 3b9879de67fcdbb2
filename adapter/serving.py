"""Running the application on its TLS socket, with every client stall bounded in time.

``web.run_app`` cannot set asyncio's TLS handshake timeout (60 s, fixed), and aiohttp bounds
neither a request that never finishes nor, by itself, a body that trickles in. So a client that
stalls a handshake, a request head or a body held a connection (about 300 KB of buffers, most of
it asyncio's TLS read buffer) for a minute or, for a body, forever. Here each stall has a flag
(``adapter.config.ConnectionConfig``):

- the TLS handshake, and the closing TLS exchange, within ``--tls-handshake-timeout``;
- a complete request head within ``--idle-timeout`` of the handshake or of the previous response
  (aiohttp's keep-alive timer, which data trickling in does not extend);
- the answer within ``--request-timeout``, else a 504 ``Timeout`` ``Status``, as kube-apiserver
  answers (``RequestDeadlines``, which ``adapter.app`` applies to every request): this bounds a
  body that trickles in.

SIGTERM and SIGINT stop the server gracefully, as ``web.run_app`` does. While it serves, the
heap's free memory is handed back to the kernel when a lot of it accumulates (``adapter.heap``):
the buffers of connections that closed, above all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from adapter import background, errors, heap
from adapter.config import ServerConfig

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

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL_SECONDS)
            self.sweep()

    async def lifetime(self, app: web.Application) -> AsyncIterator[None]:
        """A ``cleanup_ctx`` running the sweep while the application runs."""
        async with background.running(self._sweep_forever()):
            yield


class BoundedTlsSite(web.TCPSite):
    """A ``TCPSite`` whose TLS handshakes and closing exchanges have a time limit."""

    __slots__ = ("_handshake_timeout",)

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext,
        handshake_timeout_seconds: float,
    ) -> None:
        super().__init__(runner, host, port, ssl_context=ssl_context)
        self._handshake_timeout = handshake_timeout_seconds

    async def start(self) -> None:
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            server,
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            ssl_handshake_timeout=self._handshake_timeout,
            ssl_shutdown_timeout=self._handshake_timeout,
        )


async def _release_freed_memory(freed: heap.FreedMemory) -> None:
    while True:
        await asyncio.sleep(RELEASE_CHECK_SECONDS)
        freed.release_if_grown()


def run_server(
    app: web.Application | Awaitable[web.Application],
    config: ServerConfig,
    ssl_context: ssl.SSLContext,
    announce: Callable[[], None],
) -> None:
    """Serve ``app`` (or the application it resolves to) on the configured address, with the
    connection limits of ``config``, until SIGTERM or SIGINT."""
    limits = config.connections

    async def serve() -> None:
        application = app if isinstance(app, web.Application) else await app
        runner = web.AppRunner(
            application,
            handle_signals=True,
            access_log=None,
            keepalive_timeout=limits.idle_timeout_seconds,
            shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS,
        )
        await runner.setup()
        try:
            await BoundedTlsSite(
                runner,
                config.bind_address,
                config.secure_port,
                ssl_context,
                limits.tls_handshake_timeout_seconds,
            ).start()
            announce()
            async with background.running(_release_freed_memory(heap.FreedMemory())):
                await asyncio.Event().wait()  # until a signal raises GracefulExit
        finally:
            await runner.cleanup()

    with contextlib.suppress(web.GracefulExit, KeyboardInterrupt):
        asyncio.run(serve())
