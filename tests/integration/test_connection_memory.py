"""The memory of idle TLS connections comes back once they close, in a real adapter process.

Each connection holds asyncio's 256 KiB TLS read buffer; freed, such buffers stayed in the
process (glibc returns heap memory only from its top), so a burst of connections that any
client can open, credentials or not, raised the resident memory for good. The adapter runs on
asyncio's loop here (``--event-loop asyncio``), where connections cost the most; on uvloop, the
default, each holds about 36 KiB resident (700 took 24 MiB, of which 18 came back)."""

from __future__ import annotations

import asyncio
import ssl
import time
from pathlib import Path

import pytest

from tests.integration.conftest import start_adapter

pytestmark = pytest.mark.integration

CONNECTIONS = 100
"""About 28 MB of buffers: past what the adapter lets lie free before handing it back (16 MiB)."""


def resident_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS"))


async def open_idle(port: int, context: ssl.SSLContext) -> asyncio.StreamWriter:
    """A connection that asked for ``/healthz`` (no credentials needed) and stays open."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    await reader.readuntil(b"ok")
    return writer


async def test_the_memory_of_closed_connections_comes_back(tmp_path: Path) -> None:
    adapter = start_adapter(tmp_path, "--event-loop", "asyncio")
    try:
        pid = adapter.process.pid
        context = ssl.create_default_context(cafile=str(adapter.ca_file))
        started = resident_bytes(pid)
        writers = []
        for _ in range(CONNECTIONS // 50):  # 50 at a time: the listen backlog holds them
            writers += await asyncio.gather(*(open_idle(adapter.port, context) for _ in range(50)))
        held = resident_bytes(pid) - started
        assert held > CONNECTIONS * 200 * 1024, f"{held >> 20} MiB for {CONNECTIONS} connections"
        for writer in writers:
            writer.close()
        deadline = time.monotonic() + 15
        while (left := resident_bytes(pid) - started) > held / 4:
            assert time.monotonic() < deadline, f"{left >> 20} of {held >> 20} MiB stayed"
            await asyncio.sleep(0.2)
    finally:
        adapter.process.kill()  # how it stops is not the point here: no graceful wait
        adapter.process.wait()
