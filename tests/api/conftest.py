"""The real application over real TLS on 127.0.0.1, on the adapter's own site (its connection
limits), with a clock the test moves by hand."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from adapter import serving
from adapter.app import AdapterState, Handler, make_app
from adapter.client import PodIdentity, encode_report
from adapter.clientcerts import ClientCertificates
from adapter.config import ConnectionConfig, PushConfig, ServerConfig, StoreConfig
from adapter.provider import MetricsProvider
from adapter.sketch import LatencySketch
from adapter.store import Store
from adapter.store_provider import StoreProvider
from adapter.transport import PushToken, ServingTls
from tests.conftest import Pki

TOKEN = "test-push-token"


class FakeClock:
    """Wall-clock stand-in: starts at a fixed time, moves only when told."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Faults:
    """What the network does to the next pushes: nothing, refuse them, or lose the answer."""

    mode: str | None = None
    """None, "refuse" (503 before the adapter sees the push), "lose_answer" (the adapter
    applies the push, then the connection drops before the client reads the answer) or "stall"
    (no answer until ``released`` is set; then answered as ``mode`` says by then, e.g. refused)."""
    released: asyncio.Event = field(default_factory=asyncio.Event)
    push_peers: list[tuple[str, int]] = field(default_factory=list)
    """The client address and port of every push, faulty or not (one port: one connection)."""


def fault_middleware(faults: Faults) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def inject(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/push/v1" and request.transport is not None:
            faults.push_peers.append(request.transport.get_extra_info("peername")[:2])
        if request.path != "/push/v1" or faults.mode is None:
            return await handler(request)
        if faults.mode == "stall":
            await faults.released.wait()
        if faults.mode is None:
            return await handler(request)
        if faults.mode == "refuse":
            return web.Response(status=503, headers={"Retry-After": "1"})
        if faults.mode == "shed_for_10s":
            return web.Response(status=429, headers={"Retry-After": "10"})
        await handler(request)
        assert request.transport is not None
        request.transport.abort()
        raise ConnectionResetError("the answer was lost on the way back")

    return inject


@dataclass
class RunningAdapter:
    """One adapter application served over HTTPS, and sessions to talk to it."""

    url: str
    state: AdapterState
    clock: Callable[[], float]
    reader: aiohttp.ClientSession
    """Presents the client certificate."""
    anonymous: aiohttp.ClientSession
    """Trusts the CA but presents no certificate."""
    faults: Faults

    async def push(
        self,
        identity: PodIdentity,
        seq: int,
        latencies: list[float] | None = None,
        gauges: dict[str, float] | None = None,
    ) -> aiohttp.ClientResponse:
        sketch = LatencySketch.from_values(latencies) if latencies else LatencySketch.empty()
        body = encode_report(identity, seq, gauges or {}, sketch, self.clock())
        async with self.anonymous.post(
            f"{self.url}/push/v1", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
        ) as response:
            await response.read()
            return response

    async def get(self, path: str) -> tuple[int, dict[str, Any], str]:
        """GET as the certificate user: status, JSON body, content type."""
        async with self.reader.get(f"{self.url}{path}") as response:
            return response.status, await response.json(), response.content_type


@contextlib.asynccontextmanager
async def serve_adapter(
    pki: Pki,
    port: int = 0,
    clock: Callable[[], float] | None = None,
    window_seconds: float = 30,
    request_timeout_seconds: float = 60,
    push: PushConfig | None = None,
    connections: ConnectionConfig | None = None,
    client_ca_file: Path | None = None,
    pod_memory_budget_bytes: int | None = None,
    host: str = "127.0.0.1",
    config: ServerConfig | None = None,
    provider: MetricsProvider | None = None,
) -> AsyncIterator[RunningAdapter]:
    """Serve the application on ``host``:``port`` (a free port by default) until the block ends.

    The clock is a ``FakeClock`` unless one is given (``time.time`` for tests with real
    processes pushing in real time). Client certificates are verified against the PKI's CA
    unless ``client_ca_file`` names another. ``config`` and ``provider`` replace the push-mode
    defaults (the window, request timeout and budget arguments then do nothing).
    """
    clock = clock or FakeClock()
    config = config or ServerConfig(
        store=StoreConfig(
            window_seconds=window_seconds,
            max_age_seconds=10,
            pod_memory_budget_bytes=pod_memory_budget_bytes,
        ),
        connections=connections
        or ConnectionConfig(request_timeout_seconds=request_timeout_seconds),
        push=push or PushConfig(),
    )
    store = Store(config.store)
    client_ca_file = client_ca_file or pki.ca_cert
    tls = ServingTls(pki.serving_cert, pki.serving_key, client_ca_file)
    state = AdapterState(
        config=config,
        store=store,
        provider=provider or StoreProvider(store, clock),
        push_token=PushToken(TOKEN),
        clock=clock,
        tls=tls,
        client_certificates=ClientCertificates(client_ca_file, tls),
    )
    faults = Faults()
    app = make_app(state)
    app.middlewares.insert(0, fault_middleware(faults))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = serving.BoundedTlsSite(
        runner,
        host,
        port,
        state.tls.context,
        config.connections.tls_handshake_timeout_seconds,
        state.connections,
        access_log=None,
    )
    await site.start()
    port = runner.addresses[0][1]
    reader = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=pki.client_context()))
    anonymous = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=pki.client_context(with_client_cert=False))
    )
    try:
        yield RunningAdapter(f"https://{host}:{port}", state, clock, reader, anonymous, faults)
    finally:
        await reader.close()
        await anonymous.close()
        await runner.cleanup()


@pytest.fixture
async def adapter_server(pki: Pki) -> AsyncIterator[RunningAdapter]:
    async with serve_adapter(pki) as server:
        yield server


async def until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    """Wait (polling) until ``condition()`` holds, for what happens on the server's own time."""
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition did not come true in time")
