"""On the same traffic, the push path and the Prometheus path serve the same answers.

The fleet (``conftest.py``): pods push to one adapter and are scraped every second by a real
Prometheus that a second adapter (``--source prometheus``) reads. Bounds, from how each path
measures: the same pod set; gauges within what one scrape interval can change (one request
completes per 1.5 s on ``slow-0``); the pooled p99 within the histogram's bucket resolution of
the push path's value (its bucket or the next one either side, ``assert_same_p99``); rates
within 5 % (Prometheus' window ends at its last scrape, up to 1 s before the push path's).
Prometheus stopped and erring: ``test_restart.py``.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from model_server.metrics import LATENCY_BUCKETS
from tests.prometheus.conftest import (
    NAMESPACE,
    WINDOW_SECONDS,
    Fleet,
    read,
    values,
)

pytestmark = pytest.mark.integration

BASE = f"/apis/custom.metrics.k8s.io/v1beta2/namespaces/{NAMESPACE}"
EXTERNAL = f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{NAMESPACE}"


def both(
    fleet: Fleet, path: str, absent_retries: int = 0
) -> tuple[dict[str, float], dict[str, float]]:
    """What the Prometheus-mode and the push-mode adapter answer, asked back to back; the
    Prometheus side asked again up to ``absent_retries`` times while it answers 404 (a gauge
    window as long as the scrape interval holds no sample for a moment when a scrape is late:
    2 % of 1 s windows at 1 s scrapes on a busy machine; docs/operations.md)."""
    pulled_status, pulled = read(fleet.pulled, path)
    for _ in range(absent_retries):
        if pulled_status != 404:
            break
        time.sleep(0.1)
        pulled_status, pulled = read(fleet.pulled, path)
    pushed_status, pushed = read(fleet.push, path)
    assert pulled_status == pushed_status == 200, (path, pulled, pushed)
    return values(pulled), values(pushed)


def assert_same_p99(pulled: float, pushed: float) -> None:
    """Prometheus' p99 lies in the histogram bucket that holds the push path's, or in the next
    one either side: the two windows end up to a scrape apart under live load, and a p99 near a
    bucket edge crosses it. (p50 for p99, or a mean of per-pod p99s, is buckets away.)"""
    edges = (0.0, *LATENCY_BUCKETS)
    holding = next(i for i, upper in enumerate(edges) if i and pushed <= upper)
    lower = edges[max(0, holding - 2)]
    upper = edges[holding + 1] if holding + 1 < len(edges) else float("inf")
    assert lower <= pulled <= upper, (pulled, pushed, (lower, upper))


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
                pulled, pushed = await asyncio.to_thread(both, fleet, path, 10)
                assert set(pulled) == set(pushed)
                for name in pulled:
                    assert abs(pulled[name] - pushed[name]) <= 1.0, (path, pulled, pushed)
                    assert pushed[name] >= 1.0  # a held queue, not two zeros
            for post in posts:
                post.cancel()

    asyncio.run(compare())
