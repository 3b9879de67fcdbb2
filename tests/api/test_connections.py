"""The adapter's own site (``adapter.serving``) over real TLS: ``--max-connections`` closes a
connection beyond it before its handshake, ``--write-timeout`` drops a client that stops
reading its answer, and a request that is not HTTP gets a ``Status`` like every other error."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from collections.abc import Callable

import pytest

from adapter.client import PodIdentity
from adapter.config import ConnectionConfig
from adapter.report import QUEUE_DEPTH as QUEUE
from adapter.report import PodRef, Report
from tests.api.conftest import TOKEN, RunningAdapter, serve_adapter, until
from tests.conftest import Pki


def address(adapter: RunningAdapter) -> tuple[str, int]:
    host, port = adapter.url.removeprefix("https://").split(":")
    return host, int(port)


async def tls_connection(
    pki: Pki, adapter: RunningAdapter
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(
        *address(adapter), ssl=pki.client_context(), server_hostname="127.0.0.1"
    )


def metric(adapter: RunningAdapter, name: str) -> float | None:
    return adapter.state.telemetry.registry.get_sample_value(name)


async def test_a_connection_beyond_the_limit_is_closed_before_its_handshake(pki: Pki) -> None:
    async with serve_adapter(pki, connections=ConnectionConfig(max_connections=2)) as adapter:
        held = [await tls_connection(pki, adapter) for _ in range(2)]
        await until(lambda: metric(adapter, "adapter_connections") == 2)
        reader, writer = await asyncio.open_connection(*address(adapter))  # plain TCP
        writer.write(b"\x16\x03\x01")  # the start of a ClientHello: never answered
        with pytest.raises(ConnectionResetError):  # closed at once, before any TLS byte
            assert await asyncio.wait_for(reader.read(), 5) == b""
            raise ConnectionResetError("closed")
        writer.close()
        assert metric(adapter, "adapter_connections_refused_total") == 1
        with pytest.raises((ConnectionError, ssl.SSLError)):
            await tls_connection(pki, adapter)
        assert metric(adapter, "adapter_connections_refused_total") == 2

        held.pop()[1].close()
        await until(lambda: metric(adapter, "adapter_connections") == 1)
        status, _, _ = await adapter.get("/openapi/v2")  # a place is free again
        assert status == 200
        for _, writer in held:
            writer.close()


POD = PodIdentity("ml", "model-7d4b9c-aaaaa", "uid-a", {"app": "model"}, "model")
QUERY_BIG = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/big/pods/*/inference_queue_depth"


def stalled_reader(pki: Pki, where: tuple[str, int], path: str) -> ssl.SSLSocket:
    """A TLS connection that sent ``GET path`` and will never read the answer."""
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(10)
    raw.connect(where)
    sock = pki.client_context().wrap_socket(raw, server_hostname="127.0.0.1")
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: adapter\r\n\r\n".encode())
    return sock


async def test_a_client_that_stops_reading_its_answer_is_dropped(pki: Pki) -> None:
    limits = ConnectionConfig(write_timeout_seconds=0.3)
    async with serve_adapter(pki, connections=limits) as adapter:
        for i in range(1500):  # a pod list answer of ~370 KB
            report = Report(PodRef("big", f"model-{i:04d}"), f"uid-{i}", 1, gauges={QUEUE: i})
            adapter.state.store.apply(report, adapter.clock())
        # A blocking socket that never reads past the handshake, with a small receive window
        # (an asyncio client would read into its own buffer): the rest of the answer stays in
        # the adapter's buffers until the write timeout.
        open_before = metric(adapter, "adapter_connections")
        sock = await asyncio.to_thread(stalled_reader, pki, address(adapter), QUERY_BIG)
        await until(lambda: metric(adapter, "adapter_connections_write_timeouts_total") == 1)
        await until(lambda: metric(adapter, "adapter_connections") == open_before)
        sock.close()
        status, _body, _ = await adapter.get("/openapi/v2")
        assert status == 200, "other clients are served"


@pytest.mark.parametrize(
    "raw",
    [b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nHost: a\r\nBad\x01Header: x\r\n\r\n"],
)
async def test_a_request_that_is_not_http_gets_a_status(
    adapter_server: RunningAdapter, pki: Pki, raw: bytes
) -> None:
    reader, writer = await tls_connection(pki, adapter_server)
    writer.write(raw)
    answer = await asyncio.wait_for(reader.read(), 10)  # then the connection closes
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith((b"HTTP/1.0 400 ", b"HTTP/1.1 400 ")), head
    assert b"content-type: application/json" in head.lower()
    status = json.loads(body)
    assert (status["kind"], status["code"], status["reason"]) == ("Status", 400, "BadRequest")
    assert status["message"].startswith("the request is not valid HTTP/1.1: ")


def unfinished_head(index: int, size: int) -> bytes:
    """The start of a request head of about ``size`` bytes in headers of 8,000 bytes (aiohttp
    takes up to 128 of them): never finished, so the server holds every header parsed so far."""
    lines = [b"GET /healthz HTTP/1.1", b"Host: adapter"]
    lines += [b"X-%d-%d: %s" % (index, n, b"a" * 8000) for n in range(size // 8000)]
    return b"\r\n".join(lines) + b"\r\n"


def unfinished_push(index: int, size: int) -> bytes:
    """A push whose head announces a body of 250,000 bytes, of which ``size`` come."""
    head = f"POST /push/v1 HTTP/1.1\r\nHost: adapter\r\nAuthorization: Bearer {TOKEN}\r\n"
    head += "Content-Type: application/json\r\nContent-Length: 250000\r\n\r\n"
    return head.encode() + b" " * size


@pytest.mark.parametrize("unfinished", [unfinished_head, unfinished_push])
async def test_unfinished_requests_are_bounded_in_bytes_together(
    pki: Pki, unfinished: Callable[[int, int], bytes]
) -> None:
    """A request head may have 128 headers of 8 KB each, and anyone may open connections: 200
    connections each holding an unfinished 1 MB head took 480 MB of the adapter's memory. Past
    the budget of bytes received and not yet parsed (or read, for a body), the connections
    holding the most go."""
    limits = ConnectionConfig(receiving_budget_bytes=1024 * 1024)
    async with serve_adapter(pki, connections=limits) as adapter:
        connections = adapter.state.connections
        heads = []
        for index in range(12):  # 12 x 240 KB: the budget holds four
            reader, writer = await tls_connection(pki, adapter)
            writer.write(unfinished(index, 240_000))
            await writer.drain()
            heads.append((reader, writer))
        await until(lambda: connections.receiving_dropped >= 8)
        assert connections.receiving_bytes <= limits.receiving_budget_bytes
        for _, writer in heads:
            writer.close()
        status, _, _ = await adapter.get("/openapi/v2")
        assert status == 200, "other clients are served"
        pushes = [await adapter.push(POD, seq) for seq in range(1, 4)]  # keep-alive, bodies
        assert [response.status for response in pushes] == [200] * 3
        await until(lambda: connections.receiving_bytes == 0)
        assert metric(adapter, "adapter_connections_receiving_dropped_total") >= 8
