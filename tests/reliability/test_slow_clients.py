"""Slow and stalled clients (slowloris): the server keeps answering others, and every stalled
connection is closed by the server within its timeout, giving its descriptor back.

Dozens of connections stall at each stage a client can stall at: before the TLS handshake (a
silent TCP connection), in the middle of it (half a ClientHello), in the request head (bytes
trickling in, which must not extend the deadline), in the body, and idle after a request. The
timeouts are shortened with the flags so the test is quick.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from adapter.client import PodIdentity, encode_report
from adapter.sketch import LatencySketch
from tests.integration.conftest import AdapterProcess
from tests.reliability.conftest import (
    CUSTOM_METRICS,
    HANDSHAKE_TIMEOUT,
    IDLE_TIMEOUT,
    REQUEST_TIMEOUT,
    TlsAdapter,
    log_problems,
    open_descriptors,
)

pytestmark = pytest.mark.integration

PER_KIND = 12
PROMPT = 1.0
"""An answer to a well-behaved client while the stalled ones hang on (seconds, generous: the
machine is shared)."""
SLACK = 1.5
"""Beyond a timeout: the request-timeout sweep runs once a second, plus scheduling."""


Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Stalls:
    """Ways to open a connection and stall; each returns the open stream."""

    def __init__(self, adapter: AdapterProcess) -> None:
        self.port = adapter.port
        self.token = adapter.token
        self.context = ssl.create_default_context(cafile=str(adapter.ca_file))

    async def _tls(self) -> Stream:
        return await asyncio.open_connection(
            "127.0.0.1", self.port, ssl=self.context, server_hostname="127.0.0.1"
        )

    async def silent_tcp(self) -> Stream:
        """Connects and never starts the handshake."""
        return await asyncio.open_connection("127.0.0.1", self.port)

    async def half_client_hello(self) -> Stream:
        """Sends half of a real ClientHello."""
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = self.context.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
        with contextlib.suppress(ssl.SSLWantReadError):
            tls.do_handshake()
        hello = outgoing.read()
        stream = await asyncio.open_connection("127.0.0.1", self.port)
        stream[1].write(hello[: len(hello) // 2])
        return stream

    async def trickled_head(self) -> Stream:
        """Completes the handshake, then sends a request head a few bytes at a time."""
        stream = await self._tls()
        stream[1].write(b"GET /healthz HTTP/1.1\r\nHost: adapter\r\n")
        return stream

    async def partial_body(self) -> Stream:
        """Sends a push's head and the start of its body, then nothing."""
        stream = await self._tls()
        stream[1].write(
            b"POST /push/v1 HTTP/1.1\r\nHost: adapter\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + self.token.encode() + b"\r\n"
            b"Content-Length: 4096\r\n\r\n" + b'{"pod": '
        )
        return stream

    async def idle_after_request(self) -> Stream:
        """Makes one keep-alive request, reads the answer, then stays silent."""
        stream = await self._tls()
        stream[1].write(b"GET /healthz HTTP/1.1\r\nHost: adapter\r\n\r\n")
        await stream[0].readuntil(b"ok")
        return stream


async def trickle(writer: asyncio.StreamWriter) -> None:
    """One more header byte every 100 ms: a slowloris keeping its head 'in progress'."""
    with contextlib.suppress(ConnectionError, RuntimeError):
        for _ in range(100):
            await asyncio.sleep(0.1)
            if writer.is_closing():
                return
            writer.write(b"X")


async def ended_by_server(stream: Stream, opened: float) -> tuple[float, bytes]:
    """Seconds from ``opened`` until the server ended the connection, or answered on it, and
    what it sent. The client hangs up after an answer (the server would linger, reading the
    rest of the body, up to aiohttp's ten seconds)."""
    reader, writer = stream
    received = b""
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        while chunk := await reader.read(4096):
            received += chunk
            head, _, body = received.partition(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length: *(\d+)", head)
            if length and len(body) >= int(length[1]):
                break
    ended = time.monotonic() - opened
    writer.close()
    with contextlib.suppress(ConnectionError, ssl.SSLError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), 1)
    return ended, received


async def timed(request: Callable[[], Awaitable[int]]) -> tuple[int, float]:
    started = time.monotonic()
    status = await request()
    return status, time.monotonic() - started


async def well_behaved_requests(adapter: AdapterProcess) -> list[tuple[str, int, float]]:
    """A health check, a metrics query with a client certificate and a push, each on a new
    connection (a full handshake), with their status and duration."""
    context = ssl.create_default_context(cafile=str(adapter.ca_file))
    directory = adapter.kubeconfig.parent
    context.load_cert_chain(str(directory / "alice.crt"), str(directory / "alice.key"))
    report = encode_report(
        PodIdentity("slow", "bystander", labels={"app": "model"}),
        int(time.time() * 1000),
        {"inference_queue_depth": 1},
        LatencySketch.empty(),
        time.time(),
    )
    connector = aiohttp.TCPConnector(ssl=context, force_close=True)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def get(path: str) -> int:
            async with session.get(adapter.url + path) as response:
                await response.read()
                return response.status

        async def push() -> int:
            headers = {"Authorization": f"Bearer {adapter.token}"}
            async with session.post(
                adapter.url + "/push/v1", json=report, headers=headers
            ) as response:
                await response.read()
                return response.status

        results = []
        for name, request in (
            ("healthz", lambda: get("/healthz")),
            ("discovery", lambda: get(CUSTOM_METRICS)),
            ("push", push),
        ):
            status, seconds = await timed(request)
            results.append((name, status, seconds))
        return results


async def stall_and_watch(adapter: AdapterProcess) -> dict[str, Any]:
    stalls = Stalls(adapter)
    kinds = {
        "silent_tcp": stalls.silent_tcp,
        "half_client_hello": stalls.half_client_hello,
        "trickled_head": stalls.trickled_head,
        "partial_body": stalls.partial_body,
        "idle_after_request": stalls.idle_after_request,
    }
    opened = time.monotonic()
    opening = [
        asyncio.gather(*(open_stall() for _ in range(PER_KIND))) for open_stall in kinds.values()
    ]
    streams = dict(zip(kinds, await asyncio.gather(*opening), strict=True))
    trickles = [asyncio.create_task(trickle(w)) for _, w in streams["trickled_head"]]
    await asyncio.sleep(0.1)  # the server accepts what the kernel already has
    held = open_descriptors(adapter.process.pid)
    others = await well_behaved_requests(adapter)
    ends = {
        kind: await asyncio.gather(*(ended_by_server(s, opened) for s in kind_streams))
        for kind, kind_streams in streams.items()
    }
    for task in trickles:
        task.cancel()
    return {"held": held, "others": others, "ends": ends}


def wait_for_descriptors(pid: int, at_most: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while (count := open_descriptors(pid)) > at_most and time.monotonic() < deadline:
        time.sleep(0.05)
    return count


def test_stalled_clients_are_timed_out_while_others_are_served(
    tls_adapter: TlsAdapter,
) -> None:
    adapter = tls_adapter.adapter
    pid = adapter.process.pid
    baseline = open_descriptors(pid)
    outcome = asyncio.run(asyncio.wait_for(stall_and_watch(adapter), 30))

    stalled = len(outcome["ends"]) * PER_KIND
    assert outcome["held"] >= baseline + stalled, "the stalled connections were not all open"
    for name, status, seconds in outcome["others"]:
        assert status == 200, (name, status)
        assert seconds < PROMPT, f"{name} took {seconds:.3f}s next to {stalled} stalled clients"

    bounds = {
        "silent_tcp": HANDSHAKE_TIMEOUT,
        "half_client_hello": HANDSHAKE_TIMEOUT,
        "trickled_head": IDLE_TIMEOUT,
        "partial_body": REQUEST_TIMEOUT,
        "idle_after_request": IDLE_TIMEOUT,
    }
    spans = {
        kind: (min(seconds for seconds, _ in ends), max(seconds for seconds, _ in ends))
        for kind, ends in outcome["ends"].items()
    }
    print(
        "others answered in "
        + ", ".join(f"{name} {seconds * 1000:.0f}ms" for name, _, seconds in outcome["others"])
        + "; stalled connections ended by the server after (s): "
        + ", ".join(f"{kind} {low:.2f}..{high:.2f}" for kind, (low, high) in spans.items())
    )
    for kind, (fastest, slowest) in spans.items():
        assert slowest <= bounds[kind] + SLACK, (kind, slowest)
        assert fastest >= bounds[kind] * 0.9, f"{kind} ended before its timeout ({fastest:.2f}s)"
    for _, received in outcome["ends"]["partial_body"]:
        assert received.startswith(b"HTTP/1.1 504 "), received[:100]
        assert b'"reason":"Timeout"' in received

    # Every descriptor comes back once the closing TLS exchange is over (bounded too).
    left = wait_for_descriptors(pid, baseline, HANDSHAKE_TIMEOUT + SLACK)
    assert left <= baseline, f"{left - baseline} descriptors still held"
    assert adapter.process.poll() is None
    assert log_problems(adapter.log_file) == []
