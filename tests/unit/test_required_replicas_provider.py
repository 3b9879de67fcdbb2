"""``inference_required_replicas`` served by the store provider: the queueing model over what the
pods pushed (their arrivals over the rate window, their pooled ``service_time`` sketches, their
``inference_worker_slots``), for a Deployment and as an external series; its 404s when a pod
field is missing and its 400 naming the label of a bad SLO selector."""

from __future__ import annotations

import numpy as np
import pytest

from adapter import catalog, queueing, resources, selectors
from adapter.errors import ApiError
from adapter.report import CONCURRENCY, QUEUE_DEPTH, WORKER_SLOTS
from adapter.sketch import LatencySketch
from tests.unit.test_store_provider import Cluster, not_found

METRIC = catalog.REQUIRED_REPLICAS
SLO = "slo=500ms"
START, SECONDS = 1000.0, 20
RATE_PER_POD = 100  # three pods: 300 requests/s of ~54 ms on 4 slots a pod: 16 slots busy


def fleet(
    *, pods: int = 3, slots: float | None = 4.0, service: tuple[bool, ...] = (True, True, True)
) -> tuple[Cluster, np.ndarray]:
    """``pods`` pods of a Deployment, each completing ``RATE_PER_POD`` requests a second for
    ``SECONDS`` s with an empty queue; pod i pushes service times if ``service[i]``. Returns
    the cluster (its clock half a second after the last pushes) and every service time pushed."""
    cluster = Cluster()
    rng = np.random.default_rng(16)
    pushed = []
    for second in range(SECONDS):
        for index in range(pods):
            held = rng.lognormal(np.log(0.05), 0.4, RATE_PER_POD)
            gauges = {QUEUE_DEPTH: 0.0, CONCURRENCY: 2.0}
            if slots is not None:
                gauges[WORKER_SLOTS] = slots
            cluster.push(
                f"model-{index}",
                START + second + 0.01 * index,
                gauges=gauges,
                latencies=held + 0.001,
                service_times=held if service[index] else None,
            )
            if service[index]:
                pushed.append(held)
    cluster.clock.now = START + SECONDS - 0.5
    return cluster, np.concatenate(pushed) if pushed else np.empty(0)


def expected_replicas(service_times: np.ndarray, arrival_rate: float, ready: int = 3) -> int:
    """The model's answer, computed apart from the provider: the summed rate, the pooled sketch."""
    return queueing.required_replicas(
        arrival_rate=arrival_rate,
        service=queueing.ServiceTime.from_sketch(LatencySketch.from_values(service_times)),
        slots_per_pod=4,
        ready_pods=ready,
        slo_seconds=0.5,
    ).replicas


async def test_a_deployment_s_value_is_the_model_s_count_for_its_pods() -> None:
    cluster, service_times = fleet()
    value = await cluster.by_name(
        resources.DEPLOYMENTS, METRIC, "model", selectors.parse(f"{SLO},quantile=0.99")
    )
    expected = expected_replicas(service_times, 3 * RATE_PER_POD)
    assert expected == 5  # 16 slots busy need more than the three pods' 12
    assert value.value == expected
    assert value.window_seconds == 10  # the rate window's
    assert value.timestamp == START + SECONDS - 1 + 0.02  # the newest report's
    [listed] = await cluster.by_selector(resources.DEPLOYMENTS, METRIC, metric_selector=SLO)
    assert listed.value == expected
    # a tighter SLO and a higher quantile need at least as many
    tighter = await cluster.by_name(
        resources.DEPLOYMENTS, METRIC, "model", selectors.parse("slo=150ms,quantile=0.999")
    )
    assert tighter.value > expected


async def test_the_external_series_of_a_deployment_carries_the_same_count() -> None:
    cluster, service_times = fleet()
    [series] = await cluster.external(METRIC, f"deployment=model,{SLO}")
    assert series.labels == {"deployment": "model"}
    assert series.value == expected_replicas(service_times, 3 * RATE_PER_POD)
    assert "matched 0 series" in await not_found(cluster.external(METRIC, f"deployment=x,{SLO}"))


async def test_the_arrivals_of_a_pod_that_sends_no_service_times_still_count() -> None:
    # one pod of three on an old pusher: its load counts, the others' service times stand
    cluster, service_times = fleet(service=(True, True, False))
    value = await cluster.by_name(resources.DEPLOYMENTS, METRIC, "model", selectors.parse(SLO))
    expected = expected_replicas(service_times, 3 * RATE_PER_POD)
    assert expected > expected_replicas(service_times, 2 * RATE_PER_POD)  # the third pod tells
    assert value.value == expected


async def test_without_service_times_the_404_names_the_field_and_why() -> None:
    cluster, _ = fleet(service=(False, False, False))
    message = await not_found(
        cluster.by_name(resources.DEPLOYMENTS, METRIC, "model", selectors.parse(SLO))
    )
    assert f"cannot compute {METRIC} from its 3 fresh pods" in message
    assert "service_time" in message
    assert "its reports carry no service_time sketch" in message
    message = await not_found(cluster.external(METRIC, f"deployment=model,{SLO}"))
    assert "series deployment=model" in message and "service_time" in message


@pytest.mark.parametrize(("slots", "says"), [(None, "no pod reports"), (0.0, "no pod is ready")])
async def test_without_worker_slots_the_404_names_the_gauge(slots, says) -> None:
    cluster, _ = fleet(slots=slots)
    message = await not_found(
        cluster.by_name(resources.DEPLOYMENTS, METRIC, "model", selectors.parse(SLO))
    )
    assert WORKER_SLOTS in message and says in message


@pytest.mark.parametrize(
    ("metric_selector", "label"),
    [("", "slo"), ("slo=fast", "slo"), ("slo=0s", "slo"), (f"{SLO},quantile=99", "quantile")],
)
async def test_a_bad_slo_selector_is_a_400_naming_the_label(metric_selector, label) -> None:
    cluster, _ = fleet()
    calls = [
        cluster.by_name(resources.DEPLOYMENTS, METRIC, "model", selectors.parse(metric_selector)),
        cluster.by_selector(resources.DEPLOYMENTS, METRIC, metric_selector=metric_selector),
        cluster.external(METRIC, metric_selector),
    ]
    for call in calls:
        with pytest.raises(ApiError) as raised:
            await call
        assert raised.value.code == 400
        assert raised.value.field_path == f"metricLabelSelector.{label}"
