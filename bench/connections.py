"""Memory per open connection: what sizes ``--max-connections`` (docs/operations.md).

A fresh adapter process per event loop (``--event-loop uvloop`` and ``asyncio``); this process
opens ``connections`` TLS connections to it, each sending one ``GET /healthz`` and then staying
open and idle (a kept-alive connection, as each pushing pod holds one). Figure: (the adapter's
RSS with them open - its RSS before) / connections, and its RSS once they are closed again.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapter import certs, eventloop
from bench import servers

KIB = 1024


@dataclass(frozen=True)
class ConnectionSettings:
    connections: int = 1000
    loops: tuple[str, ...] = (eventloop.UVLOOP, eventloop.ASYNCIO)


async def _hold(url: str, ca_file: Path, count: int, measure: Callable[[], int]) -> int:
    host, port = url.removeprefix("https://").split(":")
    context = servers.client_context(ca_file.parent)
    streams = []
    try:
        for _ in range(count):
            reader, writer = await asyncio.open_connection(
                host, int(port), ssl=context, server_hostname=host
            )
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: adapter\r\n\r\n")
            await reader.readuntil(b"ok")
            streams.append(writer)
        await asyncio.sleep(1.0)
        return measure()
    finally:
        for writer in streams:
            writer.close()


def one_loop(loop: str, count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-connections-") as tmp:
        cert_dir = Path(tmp) / "certs"
        servers.prepare_certs(cert_dir)
        adapter = servers.start_adapter(cert_dir, Path(tmp) / "log", ["--event-loop", loop])
        try:
            time.sleep(1.0)
            before = servers.rss_bytes(adapter.pid)
            held = eventloop.run(
                _hold(
                    adapter.url,
                    cert_dir / certs.CA_CERT_FILE,
                    count,
                    lambda: servers.rss_bytes(adapter.pid),
                ),
                eventloop.default(),
            )
            time.sleep(2.0)
            after = servers.rss_bytes(adapter.pid)
        finally:
            adapter.stop()
    return {
        "loop": loop,
        "connections": count,
        "rss_before_bytes": before,
        "rss_open_bytes": held,
        "rss_after_close_bytes": after,
        "kib_per_connection": (held - before) / count / KIB,
    }


def run(settings: ConnectionSettings, log: Callable[[str], Any] = print) -> dict[str, Any]:
    results = []
    for loop in settings.loops:
        result = one_loop(loop, settings.connections)
        mib = {key: result[key] / 2**20 for key in result if key.endswith("_bytes")}
        log(
            f"  connections ({loop}): {result['kib_per_connection']:.0f} KiB each; RSS"
            f" {mib['rss_before_bytes']:.0f} → {mib['rss_open_bytes']:.0f} MiB with"
            f" {settings.connections} open, {mib['rss_after_close_bytes']:.0f} MiB after they"
            " closed"
        )
        results.append(result)
    ours = results[0]
    return {
        "name": f"memory per open TLS connection ({ours['loop']})",
        "unit": "KiB",
        "ours": ours["kib_per_connection"],
        "baseline": results[1]["kib_per_connection"] if len(results) > 1 else None,
        "ratio": None,
        "ratio_is": "the second is the asyncio loop's",
        "target": "report (sizes --max-connections)",
        "met": None,
        "runs": results,
    }
