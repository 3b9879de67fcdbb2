"""On the same traffic, the push path and the Prometheus path serve the same answers.

The fleet (``conftest.py``): pods push to one adapter and are scraped every second by a real
Prometheus that a second adapter (``--source prometheus``) reads. Bounds, from how each path
measures: the same pod set; gauges within what one scrape interval can change (one request
completes per 1.5 s on ``slow-0``); the pooled p99 within the histogram's bucket resolution of
the push path's value (at most the width of the bucket holding the larger of the two, plus the
sketch's 1 %); rates within 5 % (Prometheus' window ends at its last scrape, up to 1 s
before the push path's).
"""

from __future__ import annotations

import asyncio
import re
import time

import aiohttp
import pytest

from model_server.metrics import LATENCY_BUCKETS
from tests.prometheus.conftest import (
    NAMESPACE,
    TIMEOUT_SECONDS,
    WINDOW_SECONDS,
    Fleet,
    fetch,
    read,
    values,
)

pytestmark = pytest.mark.integration

BASE = f"/apis/custom.metrics.k8s.io/v1beta2/namespaces/{NAMESPACE}"
EXTERNAL = f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{NAMESPACE}"


def both(fleet: Fleet, path: str) -> tuple[dict[str, float], dict[str, float]]:
    """What the Prometheus-mode and the push-mode adapter answer, asked back to back."""
    pulled_status, pulled = read(fleet.pulled, path)
    pushed_status, pushed = read(fleet.push, path)
    assert pulled_status == pushed_status == 200, (path, pulled, pushed)
    return values(pulled), values(pushed)


def bucket_width(seconds: float) -> float:
    """The width of the latency histogram's bucket that holds ``seconds``."""
    lower = 0.0
    for upper in LATENCY_BUCKETS:
        if seconds <= upper:
            return upper - lower
        lower = upper
    raise AssertionError(f"{seconds} s is beyond the histogram's last finite bucket")


def assert_same_p99(pulled: float, pushed: float) -> None:
    bound = bucket_width(max(pulled, pushed)) + 0.01 * pushed
    assert abs(pulled - pushed) <= bound, (pulled, pushed, bound)


def late_in_a_slice() -> None:
    """Wait until late in a second. The push path keeps its window in 1 s slices, drops the
    slice that holds ``now - window`` whole and divides by the whole window, so its rate reads
    low by the part of a second already past (``Store._oldest_slice``,
    ``PodRecord.covered_seconds``): up to 10 % with this 10 s window, under 2 % late in a
    second. (It also lags by half a push interval, 100 ms here.)"""
    time.sleep((0.85 - time.time() % 1.0) % 1.0)


def test_same_pods_latency_and_rates(fleet: Fleet, steady_traffic: object) -> None:
    rates = "inference_requests_per_second"
    late_in_a_slice()
    pushed_status, pushed = read(fleet.push, f"{BASE}/deployments.apps/model/{rates}")
    pulled_status, pulled = read(fleet.pulled, f"{BASE}/deployments.apps/model/{rates}")
    assert pushed_status == pulled_status == 200, (pushed, pulled)
    assert values(pulled)["model"] == pytest.approx(values(pushed)["model"], rel=0.05)
    late_in_a_slice()
    pushed_status, pushed = read(fleet.push, f"{EXTERNAL}/{rates}")
    pulled_status, pulled = read(fleet.pulled, f"{EXTERNAL}/{rates}")
    assert set(values(pulled)) == set(values(pushed)) == {"model", "slow"}
    assert values(pulled)["model"] == pytest.approx(values(pushed)["model"], rel=0.05)

    selected = "?labelSelector=app%3Dmodel"
    pulled, pushed = both(fleet, f"{BASE}/pods/*/inference_latency_p99_seconds{selected}")
    assert set(pulled) == set(pushed) == {"p0", "p1"}
    for pod in pulled:
        assert_same_p99(pulled[pod], pushed[pod])

    pulled, pushed = both(fleet, f"{BASE}/deployments.apps/model/inference_latency_p99_seconds")
    assert_same_p99(pulled["model"], pushed["model"])

    status, document = read(fleet.pulled, f"{BASE}/pods/p0/inference_requests_per_second")
    assert status == 200
    (item,) = document["items"]
    assert item["windowSeconds"] == WINDOW_SECONDS
    # The timestamp is the pod's newest sample: scraped within the last seconds.
    stamped = time.mktime(time.strptime(item["timestamp"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert time.time() - 10 <= stamped <= time.time() + 1


def test_gauges_agree_within_one_scrape_interval(fleet: Fleet) -> None:
    slow = fleet.servers["slow-0"]
    body = {"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": [0.0] * 64}]}

    def scraped_held_queue() -> bool:
        status, document = read(fleet.pulled, f"{BASE}/pods/slow-0/inference_concurrency")
        return status == 200 and values(document)["slow-0"] >= 3

    async def compare() -> None:
        async with aiohttp.ClientSession() as session:
            posts = [
                asyncio.ensure_future(session.post(f"{slow.url}/v2/models/m/infer", json=body))
                for _ in range(4)
            ]
            deadline = time.monotonic() + 20
            while not await asyncio.to_thread(scraped_held_queue):
                assert time.monotonic() < deadline, "Prometheus never saw the held requests"
                await asyncio.sleep(0.1)
            for path in (
                f"{BASE}/pods/slow-0/inference_queue_depth",
                f"{BASE}/pods/slow-0/inference_concurrency",
                f"{BASE}/deployments.apps/slow/inference_queue_depth",
                f"{EXTERNAL}/inference_concurrency?labelSelector=deployment%3Dslow",
            ):
                pulled, pushed = await asyncio.to_thread(both, fleet, path)
                assert set(pulled) == set(pushed)
                for name in pulled:
                    assert abs(pulled[name] - pushed[name]) <= 1.0, (path, pulled, pushed)
                    assert pushed[name] >= 1.0  # a held queue, not two zeros
            for post in posts:
                post.cancel()

    asyncio.run(compare())


def test_prometheus_down_erring_and_back(fleet: Fleet) -> None:
    path = f"{BASE}/deployments.apps/model/inference_latency_p99_seconds"
    prometheus = fleet.prometheus
    try:
        prometheus.stop()
        started = time.monotonic()
        status, document = read(fleet.pulled, path)
        assert time.monotonic() - started < TIMEOUT_SECONDS + 5
        assert status == 503 and document["reason"] == "ServiceUnavailable", document
        assert f"Prometheus at {prometheus.url}" in document["message"]
        assert "cannot reach it" in document["message"]
        # The HPA's own "metrics unavailable" handling is the right reaction: stay ready.
        assert fetch(fleet.pulled, "/readyz") == (200, b"ok")
        assert fetch(fleet.pulled, "/livez") == (200, b"ok")

        prometheus.start("--query.max-samples=1")  # the engine answers, with an error
        status, document = read(fleet.pulled, path)
        assert status == 503, document
        assert "too many samples" in document["message"]
        prometheus.stop()
    finally:
        if prometheus.process is None:
            prometheus.start()
    deadline = time.monotonic() + 30
    while (status := read(fleet.pulled, path)[0]) != 200:
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    metrics = fetch(fleet.pulled, "/metrics")[1].decode()
    for outcome in ("success", "unreachable", "error"):
        counted = re.search(
            rf'adapter_backend_queries_total{{backend="prometheus",outcome="{outcome}"}} (\S+)',
            metrics,
        )
        assert counted is not None and float(counted.group(1)) >= 1, outcome
    assert "adapter_backend_query_duration_seconds_bucket" in metrics
