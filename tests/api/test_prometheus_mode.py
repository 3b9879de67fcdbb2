"""``--source prometheus`` through the real application: flags, the push route, a stalled
backend. (Agreement with the push path, a stopped and an erring Prometheus: tests/prometheus/.)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from adapter.__main__ import build_parser, server_config
from adapter.config import ServerConfig
from adapter.prometheus import PrometheusClient, PrometheusProvider, Queries, SeriesLabels
from adapter.prometheus.engine import MAX_CONCURRENT_QUERIES, OUTCOMES, BackendError
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
        server.close()
        await asyncio.sleep(0.05)  # a connection accepted last gets its callback
        for writer in held:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
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


def counted(client: PrometheusClient) -> dict[str, float]:
    """``adapter_backend_queries_total`` by outcome."""
    queries = next(iter(client.telemetry.collect()))
    return {s.labels["outcome"]: s.value for s in queries.samples if s.name.endswith("_total")}


async def test_queries_waiting_for_a_connection_share_the_timeout() -> None:
    """A split selection sends more queries than the client holds connections; those waiting
    for one are within the same timeout, so the request's 503 comes within the timeout, not
    after one timeout per round of connections."""
    rounds = 5
    async with (
        stalled_backend() as url,
        PrometheusClient(url, timeout_seconds=1.0) as client,
    ):
        started = asyncio.get_running_loop().time()
        answers = await asyncio.gather(
            *(client.query("up") for _ in range(rounds * MAX_CONCURRENT_QUERIES)),
            return_exceptions=True,
        )
        elapsed = asyncio.get_running_loop().time() - started
    assert {getattr(a, "outcome", a) for a in answers} == {"timeout"}
    assert elapsed < 3.0  # one timeout; five rounds of connections would take 5 s
    assert counted(client)["timeout"] == rounds * MAX_CONCURRENT_QUERIES


async def test_an_abandoned_query_is_not_counted_a_success() -> None:
    """A query its request gave up on (cancelled) has no outcome: it is not a success."""
    async with stalled_backend() as url, PrometheusClient(url, timeout_seconds=30.0) as client:
        query = asyncio.ensure_future(client.query("up"))
        await asyncio.sleep(0.2)
        query.cancel()
        with pytest.raises(asyncio.CancelledError):
            await query
    assert counted(client) == dict.fromkeys(OUTCOMES, 0)


@contextlib.asynccontextmanager
async def endless_backend(declared: bool) -> AsyncIterator[str]:
    """An engine whose answer to any query never ends (``declared``: it says a huge
    ``Content-Length`` first): a misconfigured query or a faulty proxy."""
    sample = b'{"metric":{"pod":"' + b"p" * 200 + b'"},"value":[1,"1"]},'

    async def answer(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        if declared:
            response.content_length = 2**40
        await response.prepare(request)
        await response.write(b'{"status":"success","data":{"resultType":"vector","result":[')
        with contextlib.suppress(ConnectionError):
            for _ in range(10**6):
                await response.write(sample * 100)
        return response

    app = web.Application()
    app.router.add_get("/api/v1/query", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("declared", [False, True])
async def test_an_answer_too_large_is_refused_not_buffered(declared: bool) -> None:
    async with (
        endless_backend(declared) as url,
        PrometheusClient(url, timeout_seconds=30.0, max_answer_bytes=2**20) as client,
    ):
        with pytest.raises(BackendError) as caught:
            await client.query("up")
    assert caught.value.outcome == "bad_answer"
    assert caught.value.cause == "an answer larger than the limit of 1 MiB"
    assert counted(client)["bad_answer"] == 1


def test_the_token_and_ca_files_are_checked_at_start_up(tmp_path: Path, pki: Pki) -> None:
    token, ca = tmp_path / "token", tmp_path / "ca.crt"
    ca.write_text("not a certificate\n")
    flags = ("--source=prometheus", "--prometheus-url=https://prometheus:9091")
    for text, problem in (
        ("", "the token is empty"),
        ("abc def\n", "the token holds white space: a bearer token cannot carry it"),
        ("abc\x01def", "the token holds a control character: a bearer token cannot carry it"),
    ):
        token.write_text(text)
        assert config_for(*flags, f"--prometheus-bearer-token-file={token}").validate() == [
            f"--prometheus-bearer-token-file {token}: {problem}"
        ]
    (problem,) = config_for(*flags, f"--prometheus-ca-file={ca}").validate()
    assert problem.startswith(f"--prometheus-ca-file {ca}: not a PEM CA bundle (")
    token.write_text("abc\n")
    good = (f"--prometheus-bearer-token-file={token}", f"--prometheus-ca-file={pki.ca_cert}")
    assert config_for(*flags, *good).validate() == []


async def test_a_token_rotated_to_one_a_header_cannot_carry_is_a_backend_failure(
    tmp_path: Path,
) -> None:
    """The token is read again when its file changes; one that cannot be sent fails the query
    (a 503, counted), never the request handler."""
    token = tmp_path / "token"
    token.write_text("first\n")
    async with stalled_backend() as url, PrometheusClient(url, 0.3, token_file=token) as client:
        with pytest.raises(BackendError, match="no answer within the timeout"):
            await client.query("up")
        token.write_text("second\nline\n")
        with pytest.raises(BackendError) as caught:
            await client.query("up")
    assert caught.value.outcome == "unreachable"
    assert caught.value.cause == (
        f"the bearer token in {token} holds white space: a bearer token cannot carry it"
    )
    assert counted(client)["unreachable"] == 1
