"""The push contract's additions in the store and ``StoreProvider``: time to first token pooled
like latency, the KV-cache fraction's mean and maximum, a relay's sketches (1024 counts a
request) pooled with plain ones by requests, counted requests and exact mean latencies, and the
404 of what a pod lacks, naming its preset."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest

from adapter import errors, resources, selectors
from adapter.config import StoreConfig
from adapter.provider import CustomMetricInfo
from adapter.report import (
    KV_CACHE_UTILIZATION,
    QUEUE_DEPTH,
    SERVICE_TIME,
    TIME_TO_FIRST_TOKEN,
    WORKER_SLOTS,
    Owner,
    Report,
    Sketch,
    Source,
)
from adapter.resources import PodRef
from adapter.sketch import RELATIVE_ACCURACY, LatencySketch
from adapter.store import Store
from adapter.store_provider import StoreProvider

NS = "llm"
NOW = 1000.0
TOLERANCE = RELATIVE_ACCURACY * (1 + 1e-9)
RELAY = 1024


def sketch_of(values: np.ndarray, counts_per_request: int = 1) -> Sketch:
    latencies = LatencySketch.from_values(values)
    bins = {
        i: c * counts_per_request for i, c in zip(latencies.indices, latencies.counts, strict=True)
    }
    return Sketch(
        {int(i): int(c) for i, c in bins.items()},
        latencies.zero_count * counts_per_request,
        counts_per_request,
    )


class Fleet:
    def __init__(self) -> None:
        self.store = Store(StoreConfig(window_seconds=30))
        self.clock = lambda: NOW + 0.5
        self.provider = StoreProvider(self.store, clock=self.clock)
        self.seq = 0

    def push(self, pod: str, deployment: str = "vllm", **fields: object) -> None:
        self.seq += 1
        latency = fields.pop("latency", None)
        if isinstance(latency, Sketch):
            fields.update(
                latency_bins=latency.bins,
                latency_zero_count=latency.zero_count,
                latency_counts_per_request=latency.counts_per_request,
            )
        report = Report(
            PodRef(NS, pod),
            f"uid-{pod}",
            self.seq,
            {"app": deployment},
            Owner("Deployment", deployment),
            **fields,  # type: ignore[arg-type]
        )
        self.store.apply(report, NOW)

    async def value(self, resource: resources.Resource, name: str, metric: str) -> float:
        info = CustomMetricInfo(resource.group_resource, True, metric)
        found = await self.provider.get_metric_by_name(info, NS, name, selectors.EVERYTHING)
        return found.value

    async def missing(self, resource: resources.Resource, name: str, metric: str) -> str:
        with pytest.raises(errors.ApiError) as caught:
            await self.value(resource, name, metric)
        assert caught.value.code == 404
        return caught.value.message


def close(value: float, exact: float) -> bool:
    return abs(value - exact) <= TOLERANCE * exact


async def test_time_to_first_token_pools_over_the_pods_that_measure_it() -> None:
    rng = np.random.default_rng(3)
    fleet = Fleet()
    ttft = {pod: rng.lognormal(np.log(0.05), 0.8, 200) for pod in ("a", "b")}
    for pod, values in ttft.items():
        fleet.push(pod, sketches={TIME_TO_FIRST_TOKEN: sketch_of(values)})
    fleet.push("plain", latency=sketch_of(rng.lognormal(np.log(0.2), 0.5, 50)))
    pooled = np.concatenate(list(ttft.values()))
    for q in (50, 99):
        metric = f"inference_time_to_first_token_p{q}_seconds"
        value = await fleet.value(resources.DEPLOYMENTS, "vllm", metric)
        assert close(value, float(np.quantile(pooled, q / 100)))
        per_pod = await fleet.value(resources.PODS, "a", metric)
        assert close(per_pod, float(np.quantile(ttft["a"], q / 100)))
    message = await fleet.missing(
        resources.PODS, "plain", "inference_time_to_first_token_p99_seconds"
    )
    assert message == (
        "pod llm/plain reported no inference_time_to_first_token_p99_seconds: its reports carry"
        " no time_to_first_token sketch"
    )


async def test_a_fraction_is_averaged_or_maxed_over_pods_never_summed() -> None:
    fleet = Fleet()
    for pod, used in (("a", 0.2), ("b", 0.5), ("c", 0.8)):
        fleet.push(pod, gauges={KV_CACHE_UTILIZATION: used, QUEUE_DEPTH: 2.0})
    kv = "inference_kv_cache_utilization"
    assert await fleet.value(resources.DEPLOYMENTS, "vllm", kv) == pytest.approx(0.5)
    assert await fleet.value(resources.DEPLOYMENTS, "vllm", kv + "_max") == 0.8
    assert await fleet.value(resources.PODS, "b", kv + "_max") == 0.5
    assert await fleet.value(resources.DEPLOYMENTS, "vllm", "inference_queue_depth") == 6.0
    series = await fleet.provider.get_external_metric(NS, kv, selectors.EVERYTHING)
    assert [(s.labels, s.value) for s in series] == [({"deployment": "vllm"}, pytest.approx(0.5))]


async def test_a_relays_sketches_pool_with_plain_ones_by_requests() -> None:
    """A relayed pod's counts (1024 a request) weigh as its requests, not its counts: the
    pooled quantiles are those of every request together."""
    rng = np.random.default_rng(4)
    relayed, plain = rng.lognormal(np.log(1.0), 0.3, 300), rng.lognormal(np.log(0.1), 0.3, 100)
    fleet = Fleet()
    fleet.push("relayed", latency=sketch_of(relayed, RELAY), requests=300)
    fleet.push("plain", latency=sketch_of(plain))
    together = np.concatenate([relayed, plain])
    for q in (50, 90, 99):
        value = await fleet.value(resources.DEPLOYMENTS, "vllm", f"inference_latency_p{q}_seconds")
        assert close(value, float(np.quantile(together, q / 100))), q
    rate = await fleet.value(resources.DEPLOYMENTS, "vllm", "inference_requests_per_second")
    assert rate == pytest.approx(400 / 1.5)  # half a second since their first report, and a slice


async def test_the_mean_uses_a_pods_own_sums_when_it_sends_them() -> None:
    rng = np.random.default_rng(5)
    relayed, plain = rng.lognormal(np.log(1.0), 0.3, 30), rng.lognormal(np.log(0.1), 0.3, 10)
    fleet = Fleet()
    fleet.push(
        "relayed",
        latency=sketch_of(relayed, RELAY),
        requests=30,
        latency_mean=(float(relayed.sum()), 30),
    )
    fleet.push("plain", latency=sketch_of(plain))
    mean = "inference_latency_mean_seconds"
    assert await fleet.value(resources.PODS, "relayed", mean) == pytest.approx(relayed.mean())
    assert close(await fleet.value(resources.PODS, "plain", mean), float(plain.mean()))
    pooled = await fleet.value(resources.DEPLOYMENTS, "vllm", mean)
    assert close(pooled, float((relayed.sum() + plain.sum()) / 40))


async def test_what_a_relayed_server_lacks_is_a_404_naming_the_preset() -> None:
    lacks = "TGI exports no time-to-first-token metric"
    fleet = Fleet()
    source = Source("tgi", {TIME_TO_FIRST_TOKEN: lacks, KV_CACHE_UTILIZATION: "no KV metric"})
    fleet.push("tgi-0", deployment="tgi", requests=0, source=source)
    ttft = "inference_time_to_first_token_p99_seconds"
    says = f"its reports come from the relay's tgi preset, which says: {lacks}"
    assert await fleet.missing(resources.PODS, "tgi-0", ttft) == (
        f"pod llm/tgi-0 reported no {ttft}: {says}"
    )
    assert (await fleet.missing(resources.DEPLOYMENTS, "tgi", ttft)).endswith(says)
    with pytest.raises(errors.ApiError) as caught:
        await fleet.provider.get_external_metric(NS, ttft, selectors.EVERYTHING)
    assert caught.value.message.endswith(says)
    assert await fleet.value(resources.PODS, "tgi-0", "inference_latency_p99_seconds") == 0.0


async def test_a_window_that_counts_requests_differently_starts_over() -> None:
    fleet = Fleet()
    fleet.push("a", latency=sketch_of(np.full(10, 0.5)))
    fleet.push("a", latency=sketch_of(np.full(3, 2.0), RELAY), requests=3)
    record = fleet.store.get(PodRef(NS, "a"))
    assert record is not None
    view = record.sketch_window("latency")
    assert view is not None and (view.total, view.counts_per_request) == (3 * RELAY, RELAY)
    assert await fleet.value(resources.PODS, "a", "inference_latency_p50_seconds") == (
        pytest.approx(2.0, rel=RELATIVE_ACCURACY)
    )
    assert fleet.store.held_bytes == record.held_bytes()


def test_service_time_and_worker_slots_are_kept_for_the_required_replicas() -> None:
    fleet = Fleet()
    held: Mapping[str, float] = {WORKER_SLOTS: 4.0}
    fleet.push("a", gauges=held, sketches={SERVICE_TIME: sketch_of(np.full(5, 0.02))})
    record = fleet.store.get(PodRef(NS, "a"))
    assert record is not None and record.gauges == held
    view = record.sketch_window(SERVICE_TIME)
    assert view is not None and view.total == 5


async def test_a_pod_that_swaps_which_count_it_sends_is_read_by_what_it_sends_now() -> None:
    # first the latencies' own sum and count, then the requests instead: the same number of
    # explicit counts, so the record kept reading the stale latency_mean and ignored requests
    fleet = Fleet()
    fleet.push("a", latency=sketch_of(np.full(10, 2.0), RELAY), latency_mean=(20.0, 10))
    fleet.push("a", latency=sketch_of(np.full(10, 4.0), RELAY), requests=500)
    record = fleet.store.get(PodRef(NS, "a"))
    assert record is not None and record.completed_requests() == 500
    mean = await fleet.value(resources.PODS, "a", "inference_latency_mean_seconds")
    assert close(mean, 3.0)  # both reports' latencies, from the window
