"""A raw HTTP/1.1 client over TLS: one keep-alive connection, requests sent exactly as given.

Two reasons not to use an HTTP library: the fuzz tests send request targets as generated (a
library normalises them), and the soak's load generator must cost the machine much less per
request than the adapter does, or it measures itself (``aiohttp.ClientSession`` costs about as
much per request as the adapter's handler).
"""

from __future__ import annotations

import asyncio
import ssl
from contextlib import suppress
from dataclasses import dataclass
from typing import NamedTuple


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
