"""A raw HTTP/1.1 client over TLS: one keep-alive connection, requests sent exactly as given.

Two reasons not to use an HTTP library: the fuzz tests send request targets as generated (a
library normalises them), and the soak's load generator must cost the machine much less per
request than the adapter does, or it measures itself (``aiohttp.ClientSession`` costs about as
much per request as the adapter's handler).

``get_in_session`` is a third: one GET on a new connection that offers a TLS session to resume,
which neither asyncio nor aiohttp lets a caller pass.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, NamedTuple


class Request(NamedTuple):
    """One HTTP request, sent as it is (the target is not normalised)."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes = b""


@dataclass
class RawHttp:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1 over TLS, reopened when the server
    closes it. Answers must carry a ``Content-Length`` (the adapter's always do)."""

    port: int
    context: ssl.SSLContext
    timeout_seconds: float = 30.0
    streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def exchange(self, request: Request) -> tuple[int, dict[str, str], bytes]:
        """Send ``request`` and read its answer: status, headers (names lower-cased), body."""
        if self.streams is None:
            self.streams = await asyncio.open_connection("127.0.0.1", self.port, ssl=self.context)
        reader, writer = self.streams
        lines = [f"{request.method} {request.target} HTTP/1.1", "Host: 127.0.0.1"]
        lines += [f"{name}: {value}" for name, value in request.headers.items()]
        if request.method != "GET":
            lines.append(f"Content-Length: {len(request.body)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + request.body)
        async with asyncio.timeout(self.timeout_seconds):
            head = await reader.readuntil(b"\r\n\r\n")
            status_line, *header_lines = head.decode("latin-1").split("\r\n")[:-2]
            headers = {}
            for line in header_lines:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if "transfer-encoding" in headers:
                raise ValueError(f"a chunked answer: {status_line}")
            body = await reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return int(status_line.split(" ", 2)[1]), headers, body

    async def close(self) -> None:
        if self.streams is not None:
            writer = self.streams[1]
            self.streams = None
            writer.close()
            with suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()


class SessionAnswer(NamedTuple):
    """What ``get_in_session`` got: the answer, and the TLS session it ran in."""

    status: int
    body: dict[str, Any]
    session: ssl.SSLSession | None
    """The session to offer next time (a TLS 1.3 ticket arrives with the answer)."""
    resumed: bool
    """Whether the server resumed the session offered rather than making a new one."""


def get_in_session(
    port: int, context: ssl.SSLContext, path: str, session: ssl.SSLSession | None = None
) -> SessionAnswer:
    """GET ``path`` on a new TLS connection to 127.0.0.1 offering ``session`` for resumption
    (blocking: run it in a thread). The answer must be JSON; a handshake the server refuses
    raises ``ssl.SSLError`` or ``ConnectionError``."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=30) as raw,
        context.wrap_socket(raw, server_hostname="localhost", session=session) as tls,
    ):
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        if not head:
            raise ConnectionError("the server closed the connection without an answer")
        status = int(head.split(b" ", 2)[1])
        return SessionAnswer(status, json.loads(body), tls.session, tls.session_reused)
