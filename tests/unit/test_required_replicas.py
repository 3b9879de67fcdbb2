"""``adapter.required_replicas.size``: the pods' reports put to the queueing model."""

from __future__ import annotations

import numpy as np
import pytest

from adapter import queueing
from adapter.rates import Change
from adapter.report import WORKER_SLOTS
from adapter.required_replicas import QUEUE_GROWTH_PER_READY_POD, PodState, size
from adapter.sketch import LatencySketch
from adapter.slo import Slo

RNG = np.random.default_rng(16)
SERVICE = RNG.lognormal(np.log(0.05), 0.4, 20_000)
SKETCH = LatencySketch.from_values(SERVICE)
SLO = Slo(0.5)


def steady(rate: float, seconds: float = 10.0, queue_growth: float = 0.0) -> Change:
    return Change(seconds, rate * seconds, 0.0, queue_growth, queue_growth, max(0.0, queue_growth))


def test_the_count_is_the_model_s_for_the_summed_rate_and_the_sketch() -> None:
    pods = [PodState(steady(60.0), 4.0), PodState(steady(70.0), 4.0), PodState(steady(50.0), 4.0)]
    sizing = size(pods, SKETCH, SLO)
    expected = queueing.required_replicas(
        arrival_rate=180.0,
        service=queueing.ServiceTime.from_sketch(SKETCH),
        slots_per_pod=4,
        ready_pods=3,
        slo_seconds=0.5,
    )
    assert sizing.estimate == expected
    assert (sizing.arrival_rate, sizing.slots_per_pod, sizing.ready_pods) == (180.0, 4, 3)
    assert sizing.mean_service_seconds == pytest.approx(SERVICE.mean(), rel=0.01)
    assert sizing.estimate.replicas == 3  # 180/s of ~54 ms on 4 slots a pod: 2.4 pods busy


def test_shed_requests_and_a_growing_queue_count_as_arrivals() -> None:
    # one full pod: completes 74/s, sheds 100/s, its queue grew by 200 over the window
    overloaded = Change(10.0, 740.0, 1000.0, 200.0, 200.0, 200.0)
    sizing = size([PodState(overloaded, 4.0)], SKETCH, SLO)
    assert sizing.arrival_rate == pytest.approx(194.0)
    completions_only = size([PodState(steady(74.0), 4.0)], SKETCH, SLO)
    # 194/s of 54 ms is 10.5 slots busy: three pods; 74/s (4.0 busy) would look like two
    assert (sizing.estimate.replicas, completions_only.estimate.replicas) == (3, 2)


def test_pods_with_different_slots_are_sized_by_the_fewest() -> None:
    mixed = size([PodState(steady(100.0), 8.0), PodState(steady(100.0), 2.0)], SKETCH, SLO)
    small = size([PodState(steady(100.0), 2.0), PodState(steady(100.0), 2.0)], SKETCH, SLO)
    assert mixed.slots_per_pod == 2 and mixed.estimate == small.estimate


def test_a_pod_reporting_no_slots_is_not_ready_and_its_load_still_counts() -> None:
    loading = PodState(steady(0.0), 0.0)
    sizing = size([PodState(steady(150.0), 4.0), loading], SKETCH, SLO)
    assert sizing.ready_pods == 1
    assert sizing.arrival_rate == 150.0


def test_nothing_arriving_needs_no_replica() -> None:
    sizing = size([PodState(steady(0.0), 4.0), PodState(None, 4.0)], LatencySketch.empty(), SLO)
    assert sizing.estimate.replicas == 0
    assert sizing.estimate.basis is queueing.Basis.NO_ARRIVALS
    assert sizing.mean_service_seconds is None


@pytest.mark.parametrize(
    ("slots", "says"),
    [
        ((None, None), f"no pod reports worker slots (gauge {WORKER_SLOTS})"),
        ((0.0, None), "no pod is ready: each reports 0 worker slots"),
    ],
)
def test_without_slots_the_gauge_is_named(slots, says) -> None:
    pods = [PodState(steady(10.0), s) for s in slots]
    with pytest.raises(queueing.MissingInput) as raised:
        size(pods, SKETCH, SLO)
    assert raised.value.missing == WORKER_SLOTS
    assert says in str(raised.value)


def test_arrivals_without_service_times_name_the_field() -> None:
    with pytest.raises(queueing.MissingInput) as raised:
        size([PodState(steady(10.0), 4.0)], LatencySketch.empty(), SLO)
    assert raised.value.missing == "service_time"


@pytest.mark.parametrize(
    ("growth_per_pod", "held"),
    [(QUEUE_GROWTH_PER_READY_POD * 0.9, False), (QUEUE_GROWTH_PER_READY_POD * 1.5, True)],
)
def test_a_queue_growing_by_more_than_a_request_per_pod_holds_the_ready_pods(
    growth_per_pod, held
) -> None:
    # six ready pods whose load now needs two: the model alone would shrink to two
    pods = [PodState(steady(20.0, queue_growth=growth_per_pod), 4.0) for _ in range(6)]
    sizing = size(pods, SKETCH, SLO)
    assert sizing.queue_growing is held
    assert sizing.estimate.model_replicas == 2
    assert sizing.estimate.replicas == (6 if held else 2)
