"""vLLM's and Triton's metric surfaces read both ways, on the same requests.

The mimics (``model-server --mimic``) write what vLLM and Triton write. Each has a relay
(``inference-adapter relay``, a real process) pushing to an adapter, and the fleet's real
Prometheus scrapes them too. The relays push to the fleet's push-mode adapter (10 s window), so
the burst is short and the comparisons follow it at once. After one burst of requests, with every
window holding all of it:

- the relay path's quantiles (the adapter pooling the relayed sketches) equal Prometheus' own
  ``histogram_quantile`` on the servers' buckets within the sketch's 1 %;
- the Prometheus path (``PrometheusProvider`` with the ``vllm`` and ``triton`` presets) agrees
  with the relay path within the buckets' resolution, and on the mean latency;
- what a server lacks is a 404 that names the preset, on both paths.
"""

from __future__ import annotations

import asyncio
import math
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from adapter import errors, resources, selectors
from adapter.prometheus import PrometheusClient, PrometheusProvider, Queries, SeriesLabels, presets
from adapter.provider import CustomMetricInfo
from model_server import profiles
from model_server.loadgen import LoadConfig, run_load
from model_server.mimic import surfaces
from tests.conftest import exposition_sample
from tests.prometheus.conftest import (
    LLM_NAMESPACE,
    WINDOW_SECONDS,
    RealServers,
    read,
    values,
)

pytestmark = pytest.mark.integration

BASE = f"/apis/custom.metrics.k8s.io/v1beta2/namespaces/{LLM_NAMESPACE}/deployments.apps"
REQUESTS = {"vllm-0": 24, "triton-0": 40}
RATES = {"vllm-0": 40.0, "triton-0": 80.0}
LOAD: dict[str, dict[str, Any]] = {
    "vllm-0": {"model_name": "llama", "api": "completions", "prompt_tokens": 100},
    "triton-0": {"model_name": "resnet"},
}
HISTOGRAMS = [
    # deployment, catalog stem, histogram, unit
    ("vllm", "inference_latency", "vllm:e2e_request_latency_seconds", 1.0),
    ("vllm", "inference_time_to_first_token", "vllm:time_to_first_token_seconds", 1.0),
    ("triton", "inference_time_to_first_token", "nv_inference_first_response_histogram_ms", 1e-3),
]
SKETCH_AND_SPREAD = 0.0101
"""The sketch's 1 %, and a hair for a quantile that falls within a rounded count of a sketch
bin's edge when the relay spreads its bucket (a request is 1024 counts)."""
BOUNDS = {
    "vllm:e2e_request_latency_seconds": surfaces.VLLM_REQUEST_LATENCY,
    "vllm:time_to_first_token_seconds": surfaces.VLLM_TTFT,
    "nv_inference_first_response_histogram_ms": tuple(
        b / 1000 for b in surfaces.TRITON.family("nv_inference_first_response_histogram_ms").buckets
    ),
}
"""The servers' bucket bounds, in seconds."""


def relay_sample(real: RealServers, pod: str, name: str) -> float:
    with urllib.request.urlopen(f"{real.relays[pod].url}/metrics", timeout=10) as answer:
        return exposition_sample(answer.read().decode(), name)


def relay_has_scraped(real: RealServers) -> bool:
    return all(relay_sample(real, p, 'relay_scrapes_total{result="ok"}') >= 1 for p in REQUESTS)


@pytest.fixture(scope="module")
def burst(real_servers: RealServers) -> Iterator[RealServers]:
    """One burst of requests on each mimic, after the relays' first (baseline) scrape and
    Prometheus' first; then all answered, scraped by Prometheus and pushed by the relays (two
    reports delivered after Prometheus saw the last count)."""
    prometheus = real_servers.prometheus
    prometheus.wait_for(
        f'up{{namespace="{LLM_NAMESPACE}"}} == 1', lambda samples: len(samples) == len(REQUESTS)
    )
    deadline = time.monotonic() + 60
    while not relay_has_scraped(real_servers):
        assert time.monotonic() < deadline, "the relays never scraped their servers"
        time.sleep(0.05)

    async def send() -> None:
        configs = [
            LoadConfig(
                urls=(real_servers.servers[pod].url,),
                profile=profiles.ConstantProfile(RATES[pod]),
                duration_seconds=30.0,
                seed=14,
                max_requests=REQUESTS[pod],
                report_interval_seconds=0,
                **LOAD[pod],
            )
            for pod in REQUESTS
        ]
        reports = await asyncio.gather(*(run_load(config) for config in configs))
        assert [r.ok for r in reports] == list(REQUESTS.values())

    asyncio.run(send())
    done = time.time()
    prometheus.wait_for(f"sum(vllm:request_success_total) == {REQUESTS['vllm-0']}", bool)
    prometheus.wait_for(f"sum(nv_inference_request_success) == {REQUESTS['triton-0']}", bool)
    prometheus.wait_for(
        f'min(timestamp(up{{namespace="{LLM_NAMESPACE}"}}))',
        lambda samples: bool(samples) and float(samples[0]["value"][1]) > done,
    )
    delivered = 'relay_pushes_total{result="delivered"}'
    sent = {pod: relay_sample(real_servers, pod, delivered) for pod in REQUESTS}
    deadline = time.monotonic() + 30
    while any(relay_sample(real_servers, p, delivered) < sent[p] + 2 for p in REQUESTS):
        assert time.monotonic() < deadline, "the relays stopped delivering"
        time.sleep(0.05)
    yield real_servers


@pytest.fixture
async def pulled(real_servers: RealServers) -> AsyncIterator[dict[str, PrometheusProvider]]:
    """The Prometheus path in process: a provider per preset, over the fleet's Prometheus."""
    queries = Queries(SeriesLabels(), WINDOW_SECONDS, 1.0, 10.0)
    async with PrometheusClient(real_servers.prometheus.url, 10.0) as client:
        yield {
            name: PrometheusProvider(client, queries, presets.PRESETS[name])
            for name in ("vllm", "triton")
        }


def relayed(real: RealServers, deployment: str, metric: str) -> float:
    status, document = read(real.push, f"{BASE}/{deployment}/{metric}")
    assert status == 200, document
    return values(document)[deployment]


async def prometheus_path(provider: PrometheusProvider, deployment: str, metric: str) -> float:
    info = CustomMetricInfo(resources.DEPLOYMENTS.group_resource, True, metric)
    value = await provider.get_metric_by_name(info, LLM_NAMESPACE, deployment, selectors.EVERYTHING)
    return value.value


def same_bucket_or_next(bounds: tuple[float, ...], a: float, b: float) -> bool:
    """Whether ``a`` and ``b`` lie in the same bucket of ``bounds`` or in neighbouring ones."""
    edges = (0.0, *bounds, math.inf)

    def bucket(x: float) -> int:
        return next(i for i in range(1, len(edges)) if x <= edges[i])

    return abs(bucket(a) - bucket(b)) <= 1


async def test_relay_quantiles_are_histogram_quantile_and_agree_with_the_prometheus_path(
    burst: RealServers, pulled: dict[str, PrometheusProvider]
) -> None:
    for deployment, stem, histogram, unit in HISTOGRAMS:
        for percent in (50, 90, 99):
            metric = f"{stem}_p{percent}_seconds"
            relay = relayed(burst, deployment, metric)
            (sample,) = burst.prometheus.query(
                f"histogram_quantile({percent / 100}, sum by (le) ({histogram}_bucket"
                f'{{namespace="{LLM_NAMESPACE}"}}))'
            )
            exact = float(sample["value"][1]) * unit
            assert relay == pytest.approx(exact, rel=SKETCH_AND_SPREAD), (metric, deployment)
            pulled_value = await prometheus_path(pulled[deployment], deployment, metric)
            assert same_bucket_or_next(BOUNDS[histogram], relay, pulled_value), (
                metric,
                relay,
                pulled_value,
            )


async def test_the_mean_latency_and_gauges_agree(
    burst: RealServers, pulled: dict[str, PrometheusProvider]
) -> None:
    for deployment in ("vllm", "triton"):
        metric = "inference_latency_mean_seconds"
        relay = relayed(burst, deployment, metric)
        assert relay > 0
        assert await prometheus_path(pulled[deployment], deployment, metric) == pytest.approx(
            relay, rel=0.01
        )
        depth = await prometheus_path(pulled[deployment], deployment, "inference_queue_depth")
        assert relayed(burst, deployment, "inference_queue_depth") == depth == 0
    kv = "inference_kv_cache_utilization_max"
    assert relayed(burst, "vllm", kv) == await prometheus_path(pulled["vllm"], "vllm", kv)


async def test_what_a_server_lacks_is_a_404_naming_the_preset_on_both_paths(
    burst: RealServers, pulled: dict[str, PrometheusProvider]
) -> None:
    lacks = "Triton exports no end-to-end latency histogram"
    status, document = read(burst.push, f"{BASE}/triton/inference_latency_p99_seconds")
    assert status == 404
    assert "triton preset" in document["message"] and lacks in document["message"]
    with pytest.raises(errors.ApiError) as caught:
        await prometheus_path(pulled["triton"], "triton", "inference_latency_p99_seconds")
    assert caught.value.code == 404
    assert "the triton preset has no latency: " + lacks in caught.value.message
