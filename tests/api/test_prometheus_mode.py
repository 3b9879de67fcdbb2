"""``--source prometheus`` through the real application: flags, the push route, a stalled
backend. (Agreement with the push path, a stopped and an erring Prometheus: tests/prometheus/.)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapter.__main__ import build_parser, server_config
from adapter.config import ServerConfig
from adapter.prometheus import PrometheusClient, PrometheusProvider, Queries, SeriesLabels
from tests.api.conftest import serve_adapter
from tests.conftest import Pki

BASE = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml"


def config_for(*flags: str) -> ServerConfig:
    return server_config(build_parser().parse_args(["serve", *flags]), {})


def test_prometheus_flags(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("t")
    config = config_for(
        "--source=prometheus",
        "--prometheus-url=https://thanos.monitoring.svc:9091/",
        f"--prometheus-bearer-token-file={token}",
        "--prometheus-timeout=2s",
        "--prometheus-pod-label=kubernetes_pod_name",
        "--prometheus-namespace-label=kubernetes_namespace",
        "--prometheus-gauge-window=30s",
    )
    assert config.validate() == []
    settings = config.prometheus
    assert (settings.timeout_seconds, settings.gauge_window_seconds) == (2, 30)
    assert (settings.pod_label, settings.namespace_label, settings.bearer_token_file) == (
        "kubernetes_pod_name",
        "kubernetes_namespace",
        token,
    )
    # A scrape may be 15 s old: the default max age in this mode leaves room for four. And no
    # pod pushes to this replica, so it is ready at once.
    assert config.store.max_age_seconds == 60
    assert config.warm_up_seconds == 0 and config_for().warm_up_seconds == 2
    assert config_for("--source=prometheus", "--max-age=20s").store.max_age_seconds == 20
    assert config_for().store.max_age_seconds == 10 and config_for().source == "push"


def test_prometheus_flags_are_validated(tmp_path: Path) -> None:
    assert config_for("--source=prometheus").validate() == [
        "--prometheus-url is required with --source prometheus"
    ]
    assert config_for(
        "--source=prometheus",
        "--prometheus-url=prometheus:9090",
        f"--prometheus-ca-file={tmp_path / 'missing.crt'}",
        "--prometheus-timeout=0s",
        "--prometheus-pod-label=app.kubernetes.io/pod",
    ).validate() == [
        "--prometheus-url 'prometheus:9090' must start with http:// or https://",
        f"--prometheus-ca-file {tmp_path / 'missing.crt'}: no such file",
        "--prometheus-timeout must be positive",
        "--prometheus-pod-label 'app.kubernetes.io/pod' is not a Prometheus label name",
    ]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--source=graphite"])


@contextlib.asynccontextmanager
async def stalled_backend() -> AsyncIterator[str]:
    """A listener that accepts connections and never answers: Prometheus too slow."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_a_stalled_backend_is_a_503_within_the_timeout_and_pushes_are_off(
    pki: Pki,
) -> None:
    queries = Queries(SeriesLabels(), 30.0, 15.0, 60.0)
    async with (
        stalled_backend() as url,
        PrometheusClient(url, timeout_seconds=0.3) as client,
        serve_adapter(
            pki,
            config=config_for("--source=prometheus", f"--prometheus-url={url}"),
            provider=PrometheusProvider(client, queries),
        ) as adapter,
    ):
        adapter.state.telemetry.registry.register(client.telemetry)
        started = asyncio.get_running_loop().time()
        status, body, _ = await adapter.get(f"{BASE}/pods/*/inference_queue_depth")
        assert asyncio.get_running_loop().time() - started < 5  # not the request timeout
        assert status == 503 and body["reason"] == "ServiceUnavailable"
        assert body["message"] == (
            f"the metrics backend (Prometheus at {url}) did not answer: no answer within the"
            " timeout of 0.3s"
        )
        async with adapter.anonymous.get(f"{adapter.url}/readyz") as ready:
            assert ready.status == 200
        async with adapter.reader.get(f"{adapter.url}/metrics") as metrics:
            text = await metrics.text()
        assert 'adapter_backend_queries_total{backend="prometheus",outcome="timeout"} 2.0' in text

        async with adapter.anonymous.post(f"{adapter.url}/push/v1", json={}) as push:
            assert push.status == 404
            assert (await push.json())["message"] == (
                "pushes are off: this adapter reads its metrics from Prometheus"
                " (--source prometheus)"
            )
        # Discovery lists the catalog as in push mode.
        status, body, _ = await adapter.get("/apis/custom.metrics.k8s.io/v1beta2")
        assert status == 200
        assert "pods/inference_latency_p99_seconds" in {r["name"] for r in body["resources"]}
        # ... but for the required replicas, which it cannot compute: a 404 that says why, at
        # once (no query waits on the stalled backend)
        required = f"{BASE}/deployments.apps/model/inference_required_replicas"
        status, body, _ = await adapter.get(f"{required}?metricLabelSelector=slo%3D500ms")
        assert status == 404 and "serve it from a replica with --source push" in body["message"]
