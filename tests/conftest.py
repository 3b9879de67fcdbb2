"""Shared fixtures: a throwaway PKI made with the adapter's own certificate code, free ports."""

from __future__ import annotations

import datetime
import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapter import certs
from localcluster.ports import free_port

__all__ = ["Pki", "free_port", "make_pki"]


@dataclass(frozen=True)
class Pki:
    """A CA, a serving certificate for localhost and a client certificate, all on disk."""

    directory: Path
    ca_cert: Path
    serving_cert: Path
    serving_key: Path
    client_cert: Path
    client_key: Path

    def client_context(self, with_client_cert: bool = True) -> ssl.SSLContext:
        """What a client trusting this CA uses, presenting the client certificate if asked."""
        context = ssl.create_default_context(cafile=str(self.ca_cert))
        if with_client_cert:
            context.load_cert_chain(str(self.client_cert), str(self.client_key))
        return context


def make_pki(directory: Path, hostnames: list[str]) -> Pki:
    """A new CA in ``directory``, a serving certificate for ``hostnames`` and a client one."""
    now = datetime.datetime.now(datetime.UTC)
    files = certs.ensure_serving_files(directory, hostnames, now)
    client_cert, client_key = certs.write_client_files(
        directory, directory, "alice", ["metrics-readers"], now
    )
    return Pki(directory, files.ca_cert, files.cert, files.key, client_cert, client_key)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), ["localhost", "127.0.0.1"])


def exposition_sample(text: str, name: str) -> float:
    """One sample of a Prometheus exposition, e.g. ``inference_requests_total{outcome="ok"}``."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise KeyError(name)
