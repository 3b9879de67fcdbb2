"""End to end: one adapter process, three model-server processes, the load generator.

What the adapter serves through the custom metrics API (read with the client certificate, as
``kubectl get --raw`` would) must agree with what the pods and the load generator measured.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kubernetes.utils import parse_quantity

from tests.integration.conftest import (
    AdapterProcess,
    ModelServerProcess,
    run_loadgen_json,
    start_model_server,
    stop_process,
    wait_until_ready,
)

pytestmark = pytest.mark.integration

BASE = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ml"
PODS = ("model-7d4b9c5f8d-aaaaa", "model-7d4b9c5f8d-bbbbb", "model-7d4b9c5f8d-ccccc")


def query(adapter: AdapterProcess, path: str) -> dict[str, Any]:
    context = ssl.create_default_context(cafile=str(adapter.ca_file))
    directory = adapter.kubeconfig.parent
    context.load_cert_chain(str(directory / "alice.crt"), str(directory / "alice.key"))
    with urllib.request.urlopen(f"{adapter.url}{path}", context=context, timeout=10) as answer:
        return json.loads(answer.read())


def values(document: dict[str, Any]) -> dict[str, float]:
    return {
        item["describedObject"]["name"]: float(parse_quantity(item["value"]))
        for item in document["items"]
    }


def histogram_bounds_of_quantile(url: str, q: float) -> tuple[float, float]:
    """Bounds from the pod's own latency histogram on its q-quantile as ``numpy.quantile``
    (and the adapter's sketch) define it: a value between the order statistics of 0-based
    ranks floor((n - 1) q) and the next, so from the lower edge of the bucket holding the first
    to the upper edge of the bucket holding the second. (The bucket holding the ceil(q n)-th
    value alone is a different definition: an interpolated p99 can lie just below it.)"""
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        lines = response.read().decode().splitlines()
    buckets = []
    for line in lines:
        if line.startswith("inference_request_duration_seconds_bucket{"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float(bound), float(line.rsplit(" ", 1)[1])))
    total = int(buckets[-1][1])
    below = int((total - 1) * q)  # 0-based rank of the lower order statistic
    above = min(below + 1, total - 1)

    def bucket_of(rank: int) -> tuple[float, float]:
        lower = 0.0
        for upper, cumulative in buckets:
            if cumulative > rank:
                return lower, upper
            lower = upper
        raise AssertionError(f"no bucket holds rank {rank} of {total}")

    return bucket_of(below)[0], bucket_of(above)[1]


@pytest.fixture
def cluster(
    adapter_process: AdapterProcess, tmp_path: Path
) -> tuple[AdapterProcess, list[ModelServerProcess]]:
    token = tmp_path / "push-token"
    token.write_text(adapter_process.token)
    servers = []
    try:
        for index, name in enumerate(PODS):
            servers.append(
                start_model_server(
                    tmp_path,
                    "--model-name=m",
                    f"--pod-name={name}",
                    "--namespace=ml",
                    "--labels=app=model",
                    "--deployment=model",
                    f"--pod-uid=uid-{index}",
                    "--max-concurrency=2",
                    f"--service-time=lognormal:{10 * (index + 1)}ms,0.4",
                    f"--seed={index}",
                    f"--adapter-url={adapter_process.url}",
                    f"--adapter-ca-file={adapter_process.ca_file}",
                    f"--push-token-file={token}",
                    "--push-interval=250ms",
                )
            )
        for server in servers:
            wait_until_ready(server)
        yield adapter_process, servers
    finally:
        for server in servers:
            stop_process(server.process)


def test_adapter_agrees_with_pods_and_load_generator(
    cluster: tuple[AdapterProcess, list[ModelServerProcess]],
) -> None:
    adapter, servers = cluster
    report = run_loadgen_json(
        *(f"--url={s.url}" for s in servers),
        "--model-name=m",
        "--rate=90",
        "--duration=8s",
        "--seed=3",
        "--balance=round-robin",
    )
    assert report["errors"] == {}
    asyncio.run(asyncio.sleep(1.0))  # a few push intervals for the last reports to land

    p99 = values(
        query(adapter, f"{BASE}/pods/*/inference_latency_p99_seconds?labelSelector=app%3Dmodel")
    )
    assert set(p99) == set(PODS)
    for name, server in zip(PODS, servers, strict=True):
        lower, upper = histogram_bounds_of_quantile(server.url, 0.99)
        # Two independent measurements of one pod's p99: the adapter's sketch (1 % accuracy)
        # and the pod's own Prometheus histogram, whose buckets bound the true value.
        assert lower * 0.99 <= p99[name] <= upper * 1.01, (name, lower, p99[name], upper)
    # Slower pods have higher tails: the per-pod values are not mixed up.
    assert p99[PODS[0]] < p99[PODS[1]] < p99[PODS[2]]

    (deployment_p99,) = values(
        query(adapter, f"{BASE}/deployments.apps/model/inference_latency_p99_seconds")
    ).values()
    client_p99 = report["latency_seconds"]["p99"]
    # The pooled server-side p99 sits just under what the client saw (the client adds its own
    # and the network's time), and between the fastest and the slowest pod's p99.
    assert deployment_p99 <= client_p99 * 1.02
    assert deployment_p99 >= client_p99 * 0.8
    assert min(p99.values()) < deployment_p99 <= max(p99.values()) * 1.01

    rates = values(
        query(adapter, f"{BASE}/pods/*/inference_requests_per_second?labelSelector=app%3Dmodel")
    )
    assert sum(rates.values()) > 0
    counted = sum(
        float(line.rsplit(" ", 1)[1])
        for server in servers
        for line in urllib.request.urlopen(f"{server.url}/metrics").read().decode().splitlines()
        if line.startswith('inference_requests_total{outcome="ok"}')
    )
    assert counted == report["ok"]

    # the pods push their service times and worker slots: the required replicas are served
    required = f"{BASE}/deployments.apps/model/inference_required_replicas?metricLabelSelector="
    [relaxed] = values(query(adapter, required + "slo%3D500ms")).values()
    [strict] = values(query(adapter, required + "slo%3D25ms%2Cquantile%3D0.999")).values()
    assert relaxed == int(relaxed) and 1 <= relaxed <= strict
    with pytest.raises(urllib.error.HTTPError) as raised:
        query(adapter, required + "slo%3Dfast")
    status = json.loads(raised.value.read())
    assert (raised.value.code, status["kind"], status["reason"]) == (400, "Status", "BadRequest")
    assert "slo=fast" in status["message"]


def test_queue_depth_per_pod_and_per_deployment(
    cluster: tuple[AdapterProcess, list[ModelServerProcess]],
) -> None:
    adapter, servers = cluster
    slow = servers[2]  # 2 slots, ~30 ms per request: 60 requests at once queue for ~1 s

    async def hold_requests() -> dict[str, float]:
        body = {
            "inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": [0.0] * 64}]
        }
        async with aiohttp.ClientSession() as session:
            posts = [
                asyncio.ensure_future(session.post(f"{slow.url}/v2/models/m/infer", json=body))
                for _ in range(60)
            ]
            await asyncio.sleep(0.6)
            seen = values(query(adapter, f"{BASE}/pods/*/inference_queue_depth"))
            for post in posts:
                (await post).release()
        return seen

    during = asyncio.run(hold_requests())
    assert during[PODS[0]] == during[PODS[1]] == 0
    assert during[PODS[2]] > 10
    asyncio.run(asyncio.sleep(1.0))
    after = values(query(adapter, f"{BASE}/pods/*/inference_queue_depth"))
    assert after == dict.fromkeys(PODS, 0.0)
    deployment = values(query(adapter, f"{BASE}/deployments.apps/model/inference_queue_depth"))
    assert deployment == {"model": 0.0}
