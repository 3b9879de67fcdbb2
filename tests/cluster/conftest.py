"""Cluster mode under test: the real adapter app over real TLS, driving the real ``kubernetes``
client against ``tests.kubeapi.KubeApiDouble`` (a kube-apiserver test double).

Clocks: the store runs on one ``FakeClock`` and the review caches on another, so a test can age
cached TokenReview/SubjectAccessReview answers without aging pushed data. Informers run in real
time; tests that wait for one poll with ``eventually``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from adapter import incluster, kube
from adapter.app import AdapterState, ClusterMode, make_app
from adapter.client import PodIdentity, encode_report
from adapter.config import ClusterConfig, ConnectionConfig, ServerConfig, StoreConfig
from adapter.sketch import LatencySketch
from adapter.store import Store
from adapter.store_provider import StoreProvider
from adapter.transport import PushToken, ServingTls
from tests.api.conftest import FakeClock
from tests.cluster.pki import Issued, issue, make_ca
from tests.conftest import Pki
from tests.kubeapi import KubeApiDouble

AUDIENCE = "inference-metrics-adapter"
SHARED_TOKEN = "shared-push-token"
CUSTOM = "/apis/custom.metrics.k8s.io/v1beta2"
EXTERNAL = "/apis/external.metrics.k8s.io/v1beta1"


@dataclass(frozen=True)
class ClusterPki:
    """The cluster's CAs and the client certificates the tests present."""

    directory: Path
    front_proxy_ca: Issued
    client_ca: Issued
    front_proxy: Issued
    """CN front-proxy-client, signed by the front-proxy CA: the aggregator's certificate."""
    rogue_proxy: Issued
    """Signed by the front-proxy CA, but CN evil-proxy (not an allowed name)."""
    carol: Issued
    """An x509 user (client CA): CN carol, O devs."""

    def configmap(self, **changes: str) -> dict[str, str]:
        """``extension-apiserver-authentication`` as kube-apiserver writes it."""
        data = {
            "client-ca-file": self.client_ca.pem.decode(),
            "requestheader-client-ca-file": self.front_proxy_ca.pem.decode(),
            "requestheader-allowed-names": json.dumps(["front-proxy-client"]),
            "requestheader-username-headers": json.dumps(["X-Remote-User"]),
            "requestheader-group-headers": json.dumps(["X-Remote-Group"]),
            "requestheader-extra-headers-prefix": json.dumps(["X-Remote-Extra-"]),
            "requestheader-uid-headers": json.dumps(["X-Remote-Uid"]),
        }
        data.update(changes)
        return data


@pytest.fixture(scope="session")
def cluster_pki(tmp_path_factory: pytest.TempPathFactory) -> ClusterPki:
    directory = tmp_path_factory.mktemp("cluster-pki")
    front_proxy_ca = make_ca(directory, "front-proxy-ca", "front-proxy-ca", rsa_key=True)
    client_ca = make_ca(directory, "client-ca", "kubernetes")
    return ClusterPki(
        directory,
        front_proxy_ca,
        client_ca,
        issue(front_proxy_ca, directory, "front-proxy-client", "front-proxy-client", rsa_key=True),
        issue(front_proxy_ca, directory, "evil-proxy", "evil-proxy"),
        issue(client_ca, directory, "carol", "carol", ("devs",)),
    )


@pytest.fixture
def kubeapi(tmp_path: Path, cluster_pki: ClusterPki) -> Iterator[KubeApiDouble]:
    with KubeApiDouble(tmp_path / "kubeapi") as api:
        api.set_configmap(cluster_pki.configmap())
        yield api


def client_context(pki: Pki, cert: Issued | None = None) -> ssl.SSLContext:
    """TLS to the adapter (trusting its serving CA), presenting ``cert`` if given."""
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    if cert is not None:
        context.load_cert_chain(str(cert.cert_file), str(cert.key_file))
    return context


async def eventually(condition: Callable[[], bool], within_seconds: float = 10.0) -> None:
    """Wait (polling) until ``condition()`` holds: for informers, which run in real time."""
    deadline = time.monotonic() + within_seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the condition did not come true in time")
        await asyncio.sleep(0.02)


@dataclass
class ClusterAdapter:
    """The adapter in cluster mode, served on 127.0.0.1, and clients to talk to it."""

    url: str
    state: AdapterState
    mode: ClusterMode
    kubeapi: KubeApiDouble
    store_clock: FakeClock
    review_clock: FakeClock
    pki: Pki
    cluster_pki: ClusterPki
    sessions: dict[str, aiohttp.ClientSession] = field(default_factory=dict)

    @property
    def view(self) -> kube.ClusterView:
        assert isinstance(self.mode.view, kube.ClusterView)
        return self.mode.view

    def session(self, who: str) -> aiohttp.ClientSession:
        """A session presenting: "proxy", "rogue", "carol" or "anonymous" (no certificate)."""
        if who not in self.sessions:
            cert = {
                "proxy": self.cluster_pki.front_proxy,
                "rogue": self.cluster_pki.rogue_proxy,
                "carol": self.cluster_pki.carol,
                "anonymous": None,
            }[who]
            self.sessions[who] = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=client_context(self.pki, cert))
            )
        return self.sessions[who]

    async def get(
        self, who: str, path: str, headers: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        async with self.session(who).get(f"{self.url}{path}", headers=headers) as response:
            return response.status, await response.json(content_type=None)

    async def as_user(
        self, user: str, path: str, groups: tuple[str, ...] = (), who: str = "proxy"
    ) -> tuple[int, dict[str, Any]]:
        """GET through the front proxy on behalf of ``user``."""
        headers: Any = [("X-Remote-User", user), *(("X-Remote-Group", g) for g in groups)]
        async with self.session(who).get(f"{self.url}{path}", headers=headers) as response:
            return response.status, await response.json(content_type=None)

    async def push(
        self,
        token: str,
        identity: PodIdentity,
        seq: int,
        gauges: dict[str, float] | None = None,
        latencies: list[float] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        sketch = LatencySketch.from_values(latencies) if latencies else LatencySketch.empty()
        body = encode_report(identity, seq, gauges or {}, sketch, self.store_clock())
        async with self.session("anonymous").post(
            f"{self.url}/push/v1", json=body, headers={"Authorization": f"Bearer {token}"}
        ) as response:
            return response.status, await response.json(content_type=None)


@contextlib.asynccontextmanager
async def serve_cluster_adapter(
    pki: Pki,
    kubeapi: KubeApiDouble,
    cluster_pki: ClusterPki,
    tmp_path: Path,
    connections: ConnectionConfig | None = None,
    **settings: Any,
) -> AsyncIterator[ClusterAdapter]:
    """Prepare cluster mode against ``kubeapi`` and serve it until the block ends."""
    kubeconfig = kubeapi.write_kubeconfig(tmp_path / "adapter-kubeconfig")
    cluster = replace(ClusterConfig(enabled=True, kubeconfig=kubeconfig), **settings)
    config = ServerConfig(
        store=StoreConfig(window_seconds=30, max_age_seconds=10),
        cluster=cluster,
        connections=connections or ConnectionConfig(),
    )
    store_clock, review_clock = FakeClock(), FakeClock()
    store = Store(config.store)
    tls = ServingTls(pki.serving_cert, pki.serving_key, None)
    client = kube.KubeClient.from_kubeconfig(kubeconfig)
    try:
        mode = await incluster.prepare(config, client, store, tls, clock=review_clock)
        state = AdapterState(
            config=config,
            store=store,
            provider=StoreProvider(store, store_clock, view=mode.view),
            push_token=PushToken(SHARED_TOKEN) if cluster.allow_shared_push_token else None,
            clock=store_clock,
            tls=tls,
            cluster=mode,
        )
        runner = web.AppRunner(make_app(state), access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls.context)
            await site.start()
            port = runner.addresses[0][1]
            adapter = ClusterAdapter(
                f"https://127.0.0.1:{port}",
                state,
                mode,
                kubeapi,
                store_clock,
                review_clock,
                pki,
                cluster_pki,
            )
            try:
                yield adapter
            finally:
                for session in adapter.sessions.values():
                    await session.close()
        finally:
            await runner.cleanup()
    finally:
        client.close()


@pytest.fixture
async def cluster(
    pki: Pki, kubeapi: KubeApiDouble, cluster_pki: ClusterPki, tmp_path: Path
) -> AsyncIterator[ClusterAdapter]:
    async with serve_cluster_adapter(pki, kubeapi, cluster_pki, tmp_path) as adapter:
        yield adapter
