"""Helpers of the fault tests: reading the API as ``kubectl`` does, what a process holds, and
one adapter for the connection-level faults (its certificate in a Secret volume, short
connection timeouts), shared by the certificate-rotation and slow-client tests."""

from __future__ import annotations

import datetime
import http.client
import os
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapter import certs
from tests.integration.conftest import AdapterProcess, start_adapter, stop

CUSTOM_METRICS = "/apis/custom.metrics.k8s.io/v1beta2"
HANDSHAKE_TIMEOUT = 1.5
IDLE_TIMEOUT = 1.5
REQUEST_TIMEOUT = 1.0
"""The ``tls_adapter``'s connection timeouts (seconds), short so that the tests are quick."""


class ApiReader:
    """The adapter's API read with the client certificate over one keep-alive connection, so
    polling measures the adapter's answer, not a TLS handshake per poll."""

    def __init__(self, adapter: AdapterProcess) -> None:
        self._host, self._port = "127.0.0.1", adapter.port
        directory = adapter.kubeconfig.parent
        self._context = ssl.create_default_context(cafile=str(adapter.ca_file))
        self._context.load_cert_chain(str(directory / "alice.crt"), str(directory / "alice.key"))
        self._connection: http.client.HTTPSConnection | None = None

    def get(self, path: str) -> tuple[int, bytes]:
        """Status and body; one reconnect when the kept-alive connection has gone stale."""
        for attempt in (1, 2):
            if self._connection is None:
                self._connection = http.client.HTTPSConnection(
                    self._host, self._port, context=self._context, timeout=5
                )
            try:
                self._connection.request("GET", path)
                response = self._connection.getresponse()
                return response.status, response.read()
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def pod_served(self, namespace: str, pod: str) -> bool:
        """Whether the pod-by-name URL has a value (200) or says the pod is not served (404)."""
        status, body = self.get(
            f"{CUSTOM_METRICS}/namespaces/{namespace}/pods/{pod}/inference_queue_depth"
        )
        assert status in (200, 404), (status, body[:300])
        return status == 200

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> ApiReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_descriptors(pid: int) -> int:
    """How many file descriptors (sockets included) a process holds (Linux)."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def log_problems(log_file: Path) -> list[str]:
    """Lines of an adapter log that show a failure of the server itself."""
    markers = ("Traceback", "unhandled error", "Unhandled exception", " ERROR ")
    return [line for line in log_file.read_text().splitlines() if any(m in line for m in markers)]


class SecretVolume:
    """A projected Secret volume as the kubelet writes it: ``tls.crt`` and ``tls.key`` link to
    ``..data/``, a link to a timestamped directory that an update replaces with one rename."""

    def __init__(self, directory: Path, pair: certs.KeyPair) -> None:
        self.directory = directory
        self._generation = 0
        directory.mkdir()
        self.update(pair)
        for name in ("tls.crt", "tls.key"):
            (directory / name).symlink_to(Path("..data") / name)

    def update(self, pair: certs.KeyPair) -> None:
        """Both files at once, the way the kubelet's atomic writer does it."""
        self._generation += 1
        payload = self.directory / f"..generation_{self._generation}"
        payload.mkdir()
        (payload / "tls.crt").write_bytes(pair.cert_pem)
        (payload / "tls.key").write_bytes(pair.key_pem)
        link = self.directory / "..data_tmp"
        link.symlink_to(payload.name)
        os.replace(link, self.directory / "..data")

    def replace_file(self, name: str, data: bytes) -> None:
        """One file, written to a temporary name and renamed over the old one."""
        temporary = self.directory / f".{name}.tmp"
        temporary.write_bytes(data)
        os.replace(temporary, self.directory / name)


def serving_pair(ca: certs.KeyPair) -> certs.KeyPair:
    """A new serving certificate for 127.0.0.1 from ``ca``."""
    return certs.make_serving_cert(ca, ["127.0.0.1"], datetime.datetime.now(datetime.UTC))


@dataclass(frozen=True)
class TlsAdapter:
    """An adapter serving the certificate of a Secret volume, and the CA that signs it."""

    adapter: AdapterProcess
    volume: SecretVolume
    ca: certs.KeyPair


@pytest.fixture(scope="package")
def tls_adapter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsAdapter]:
    tmp = tmp_path_factory.mktemp("tls")
    ca = certs.load_or_make_ca(tmp / "certs", datetime.datetime.now(datetime.UTC))
    volume = SecretVolume(tmp / "serving-cert", serving_pair(ca))
    adapter = start_adapter(
        tmp,
        f"--tls-cert-file={volume.directory / 'tls.crt'}",
        f"--tls-private-key-file={volume.directory / 'tls.key'}",
        f"--tls-handshake-timeout={HANDSHAKE_TIMEOUT:g}s",
        f"--idle-timeout={IDLE_TIMEOUT:g}s",
        f"--request-timeout={REQUEST_TIMEOUT:g}s",
    )
    try:
        yield TlsAdapter(adapter, volume, ca)
    finally:
        stop(adapter)
