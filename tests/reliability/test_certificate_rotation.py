"""The serving certificate replaced on disk while clients keep connecting: not one connection
fails, and new connections get the new certificate.

The files are replaced the two ways they are in practice, each atomic per file: the kubelet's
swap of the ``..data`` symlink of a projected Secret volume (both files at once), then a tool
that writes each file to a temporary name and renames it, the certificate first and the key a
little later (longer than the adapter's reload interval, so the adapter does see the new
certificate next to the old key). ``tests/integration/test_process.py`` covers files
overwritten in place.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from dataclasses import dataclass

import pytest
from cryptography import x509

from adapter import certs
from adapter.config import TlsConfig
from tests.integration.conftest import AdapterProcess
from tests.reliability.conftest import TlsAdapter, log_problems, serving_pair

pytestmark = pytest.mark.integration

CLIENTS = 4
RELOAD = TlsConfig.reload_interval_seconds
PICKED_UP = RELOAD + 1.0
"""New connections get a new certificate within this of its arrival on disk (seconds)."""
KEY_LAG = 1.2 * RELOAD
"""Between the certificate's rename and the key's: a reload surely sees the mismatched pair."""
AFTER = 0.2
"""Connections kept going after each new certificate is seen, to catch one served the old."""


def serial(pair: certs.KeyPair) -> int:
    return x509.load_pem_x509_certificate(pair.cert_pem).serial_number


@dataclass(frozen=True)
class Connection:
    """One client connection: when it started and ended, the serial served, or the error."""

    started: float
    ended: float
    serial: int | None
    error: str | None = None


class ConnectingClients:
    """Threads that each open a new TLS connection and GET ``/healthz``, over and over."""

    def __init__(self, adapter: AdapterProcess) -> None:
        self.port = adapter.port
        self.context = ssl.create_default_context(cafile=str(adapter.ca_file))
        self.connections: list[Connection] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop) for _ in range(CLIENTS)]

    def _connect(self) -> Connection:
        started = time.monotonic()
        try:
            with (
                socket.create_connection(("127.0.0.1", self.port), timeout=5) as raw,
                self.context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
            ):
                der = tls.getpeercert(binary_form=True)
                tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: adapter\r\nConnection: close\r\n\r\n")
                answer = b""
                while chunk := tls.recv(4096):
                    answer += chunk
            if not answer.startswith(b"HTTP/1.1 200 "):
                return Connection(started, time.monotonic(), None, f"answer {answer[:40]!r}")
            assert der is not None
            number = x509.load_der_x509_certificate(der).serial_number
            return Connection(started, time.monotonic(), number)
        except (OSError, ssl.SSLError) as error:
            return Connection(started, time.monotonic(), None, repr(error))

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.connections.append(self._connect())

    def first_with(self, number: int, timeout: float) -> Connection:
        """The first connection served ``number``, waiting for it up to ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for connection in list(self.connections):
                if connection.serial == number:
                    return connection
            time.sleep(0.02)
        raise AssertionError(f"no connection got serial {number} within {timeout:g}s")

    def __enter__(self) -> ConnectingClients:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def test_replaced_certificate_reaches_new_connections_and_none_fails(
    tls_adapter: TlsAdapter,
) -> None:
    adapter, volume = tls_adapter.adapter, tls_adapter.volume
    second, third = serving_pair(tls_adapter.ca), serving_pair(tls_adapter.ca)
    with ConnectingClients(adapter) as clients:
        while not clients.connections:
            time.sleep(0.01)
        first_serial = clients.connections[0].serial
        swapped = time.monotonic()
        volume.update(second)
        via_data_link = clients.first_with(serial(second), PICKED_UP)
        time.sleep(AFTER)

        renamed = time.monotonic()
        volume.replace_file("tls.crt", third.cert_pem)
        time.sleep(KEY_LAG)
        volume.replace_file("tls.key", third.key_pem)
        via_renames = clients.first_with(serial(third), PICKED_UP + KEY_LAG)
        time.sleep(AFTER)
    connections = clients.connections

    failed = [c for c in connections if c.error is not None]
    print(
        f"{len(connections)} connections, {len(failed)} failed; new certificate served"
        f" {via_data_link.ended - swapped:.2f}s after the ..data swap and"
        f" {via_renames.ended - renamed:.2f}s after the certificate rename"
        f" ({via_renames.ended - renamed - KEY_LAG:.2f}s after the key's)"
    )
    assert failed == [], failed[:3]
    assert {c.serial for c in connections} == {first_serial, serial(second), serial(third)}
    # Once a new certificate is served, connections started later never get an older one.
    for newer, older in (
        (via_data_link, {first_serial}),
        (via_renames, {first_serial, serial(second)}),
    ):
        late = [c for c in connections if c.started > newer.ended and c.serial in older]
        assert late == [], late[:3]
    assert via_data_link.ended - swapped <= PICKED_UP
    assert adapter.process.poll() is None
    assert log_problems(adapter.log_file) == []
