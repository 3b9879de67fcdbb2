"""``adapter.required_replicas.size``: the pods' reports put to the queueing model."""

from __future__ import annotations

import numpy as np
import pytest

from adapter import queueing
from adapter.rates import Change
from adapter.report import WORKER_SLOTS
from adapter.required_replicas import (
    FALL_STANDARD_ERRORS,
    QUEUE_GROWTH_PER_READY_POD,
    RECENT_SHARE,
    PodState,
    size,
)
from adapter.sketch import LatencySketch
from adapter.slo import Slo

RNG = np.random.default_rng(16)
SERVICE = RNG.lognormal(np.log(0.05), 0.4, 20_000)
SKETCH = LatencySketch.from_values(SERVICE)
SLO = Slo(0.5)
WINDOW = 10.0
RECENT = RECENT_SHARE * WINDOW
LONGER = 30.0


def counted(rate: float, seconds: float, queue: float = 0.0, growth: float = 0.0) -> Change:
    """A pod's change over ``seconds`` at ``rate`` arrivals a second (growth included)."""
    return Change(seconds, rate * seconds - growth, 0.0, growth, growth, queue)


def steady(rate: float, slots: float | None = 4.0, queue_growth: float = 0.0) -> PodState:
    return PodState(
        counted(rate, WINDOW, max(0.0, queue_growth), queue_growth),
        counted(rate, RECENT),
        slots,
        counted(rate, LONGER),
    )


def sized(pods: list[PodState], slo: Slo = SLO, service: LatencySketch = SKETCH):
    return size(pods, service, slo, WINDOW, LONGER)


def model(rate: float, slots: int = 4, ready: int = 1) -> queueing.ReplicaEstimate:
    return queueing.required_replicas(
        arrival_rate=rate,
        service=queueing.ServiceTime.from_sketch(SKETCH),
        slots_per_pod=slots,
        ready_pods=ready,
        slo_seconds=0.5,
    )


def test_the_count_is_the_model_s_for_the_summed_rate_and_the_sketch() -> None:
    sizing = sized([steady(60.0), steady(70.0), steady(50.0)])
    assert sizing.estimate == model(180.0, ready=3)
    assert (sizing.arrival_rate, sizing.slots_per_pod, sizing.ready_pods) == (180.0, 4, 3)
    assert sizing.mean_service_seconds == pytest.approx(SERVICE.mean(), rel=0.01)
    assert sizing.estimate.replicas == 3  # 180/s of ~54 ms on 4 slots a pod: 2.4 pods busy


def test_shed_requests_and_a_growing_queue_count_as_arrivals() -> None:
    # one full pod: completes 74/s, sheds 100/s, its queue grew by 200 over the window; the 200
    # waiting are drained over the window too
    overloaded = Change(WINDOW, 740.0, 1000.0, 200.0, 200.0, 200.0)
    sizing = sized([PodState(overloaded, None, 4.0)])
    assert sizing.arrival_rate == pytest.approx(194.0 + 20.0)
    completions_only = sized([PodState(counted(74.0, WINDOW), None, 4.0)])
    # 214/s of 54 ms is 11.6 slots busy: three pods at 97 % (the 500 ms SLO leaves room for
    # waiting); 74/s (4.0 slots busy: one pod full) would look like two
    assert (sizing.estimate.replicas, completions_only.estimate.replicas) == (3, 2)


@pytest.mark.parametrize(("recent_rate", "taken"), [(300.0, True), (110.0, False)])
def test_a_recent_rise_beyond_its_noise_stands_for_the_window(recent_rate, taken) -> None:
    # 100/s over the window; its last 2.5 s at recent_rate: 300/s is far beyond the noise of
    # 750 requests (about 11/s), 110/s within two standard errors of 100/s
    pod = PodState(counted(100.0, WINDOW), counted(recent_rate, RECENT), 4.0)
    sizing = sized([pod])
    error = np.sqrt(recent_rate * RECENT) / RECENT
    assert sizing.arrival_rate == (pytest.approx(recent_rate - 2 * error) if taken else 100.0)


def test_pods_with_different_slots_are_sized_by_the_fewest() -> None:
    mixed = sized([steady(100.0, 8.0), steady(100.0, 2.0)])
    small = sized([steady(100.0, 2.0), steady(100.0, 2.0)])
    assert mixed.slots_per_pod == 2 and mixed.estimate == small.estimate


def test_a_pod_reporting_no_slots_is_not_ready_and_its_load_still_counts() -> None:
    sizing = sized([steady(150.0), steady(0.0, slots=0.0)])
    assert sizing.ready_pods == 1
    assert sizing.arrival_rate == 150.0


def test_nothing_arriving_needs_no_replica() -> None:
    quiet = PodState(None, None, 4.0)
    sizing = sized([steady(0.0), quiet], service=LatencySketch.empty())
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
    with pytest.raises(queueing.MissingInput) as raised:
        sized([steady(10.0, slots=s) for s in slots])
    assert raised.value.missing == WORKER_SLOTS
    assert says in str(raised.value)


def test_arrivals_without_service_times_name_the_field() -> None:
    with pytest.raises(queueing.MissingInput) as raised:
        sized([steady(10.0)], service=LatencySketch.empty())
    assert raised.value.missing == "service_time"


def test_fewer_pods_than_the_ready_ones_must_carry_the_rate_a_few_errors_higher() -> None:
    # the highest whole rate three pods carry
    most = next(rate for rate in range(300, 0, -1) if model(float(rate)).replicas == 3)
    error = np.sqrt(most * WINDOW) / WINDOW
    assert model(most + FALL_STANDARD_ERRORS * error).replicas == 4
    # four ready pods at that load: three would do, but not three errors more: held at four
    held = sized([steady(most / 4) for _ in range(4)])
    assert (held.estimate.replicas, held.estimate.model_replicas) == (4, 3)
    assert held.estimate.basis is queueing.Basis.HELD
    # ... while from three ready pods, three it is: the hysteresis only ever holds
    assert sized([steady(most / 3) for _ in range(3)]).estimate.replicas == 3
    # ... and far enough below, the count drops
    lower = most - 2 * FALL_STANDARD_ERRORS * error
    assert sized([steady(lower / 4) for _ in range(4)]).estimate.replicas == 3


@pytest.mark.parametrize(
    ("growth_per_pod", "held"),
    [(QUEUE_GROWTH_PER_READY_POD * 0.9, False), (QUEUE_GROWTH_PER_READY_POD * 1.5, True)],
)
def test_a_queue_growing_by_more_than_a_request_per_pod_holds_the_ready_pods(
    growth_per_pod, held
) -> None:
    # six ready pods whose load now needs two
    sizing = sized([steady(20.0, queue_growth=growth_per_pod) for _ in range(6)])
    assert sizing.queue_growing is held
    assert sizing.estimate.model_replicas == 2
    assert sizing.estimate.replicas == (6 if held else 2)


def ramp(now_rate: float, slope: float) -> PodState:
    """A pod whose arrivals rise by ``slope`` per second, at ``now_rate`` now."""

    def mean(seconds: float) -> float:
        return now_rate - slope * seconds / 2

    return PodState(
        counted(mean(WINDOW), WINDOW),
        counted(mean(RECENT), RECENT),
        4.0,
        counted(mean(LONGER), LONGER),
    )


def test_a_lead_carries_a_rising_rate_on() -> None:
    rising = ramp(60.0, 2.0)  # the 10 s mean is 50/s, the 30 s mean 30/s
    now = sized([rising])
    ahead = sized([rising], Slo(0.5, lead_seconds=20.0))
    assert now.arrival_rate == pytest.approx(50.0)
    # slope (50 - 30) / 10 s, carried from the window's middle 5 s ago to 20 s ahead
    assert ahead.arrival_rate == pytest.approx(50.0 + 2.0 * 25.0)
    assert ahead.estimate.replicas > now.estimate.replicas


@pytest.mark.parametrize("pod", [steady(50.0), ramp(60.0, 0.2), ramp(60.0, -2.0)])
def test_a_lead_changes_nothing_without_a_rise_beyond_the_noise(pod) -> None:
    assert sized([pod], Slo(0.5, lead_seconds=20.0)) == sized([pod])


def test_a_lead_without_a_longer_window_is_the_window_s_rate() -> None:
    # --window no longer than --rate-window: no trend to read, and no division by zero
    rising = ramp(60.0, 2.0)
    for trend in (0.0, WINDOW):
        ahead = size([rising], SKETCH, Slo(0.5, lead_seconds=20.0), WINDOW, trend)
        assert ahead.arrival_rate == pytest.approx(50.0)
