"""``simulator.pods``: a pod is the model server's scheduler in virtual time (slots, FIFO queue,
shedding, batching, drain) and the Service is ``localcluster.balancer``'s rule."""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

import numpy as np
import pytest

from localcluster.balancer import Balancer
from simulator.events import EventQueue
from simulator.pods import Pod, PodModel, Service, Tally


def make_pod(
    service_times: list[float], *, slo: float = 10.0, seconds: int = 100, **model: object
) -> tuple[Pod, EventQueue, Tally]:
    """A ready pod at time 0 whose slots draw ``service_times`` in order."""
    events = EventQueue()
    tally = Tally(slo, seconds)
    pod = Pod("p", "u", 0.0, PodModel(**model), events, iter(service_times), tally)  # type: ignore[arg-type]
    pod.become_ready(0.0)
    return pod, events, tally


def feed(pod: Pod, events: EventQueue, arrivals: list[float], until: float) -> list[bool]:
    admitted: list[bool] = []
    events.run(arrivals, lambda t: admitted.append(pod.admit(t)), until=until)
    return admitted


def test_slots_then_a_fifo_queue_then_shedding() -> None:
    pod, events, tally = make_pod([1.0] * 10, max_concurrency=2, max_queue=2, slo=1.5)
    admitted = feed(pod, events, [0.0, 0.1, 0.2, 0.3, 0.4], until=0.5)
    assert admitted == [True, True, True, True, False]
    assert (pod.queue_depth, pod.concurrency, pod.queued, pod.shed) == (2, 4, 2, 1)
    assert tally.unserved_per_second[0] == 1
    events.run([], lambda t: None, until=10.0)
    # the queued two start, in arrival order, as the first two finish
    assert pod.take_latencies() == pytest.approx([1.0, 1.0, 1.8, 1.8])
    assert tally.slow_per_second[0] == 2  # the two that waited missed a 1.5 s SLO


def test_a_pod_is_a_fifo_queue_with_c_servers() -> None:
    """Against the Kiefer-Wolfowitz recursion: each request, in arrival order, takes the slot
    that frees first."""
    rng = np.random.default_rng(3)
    arrivals = np.cumsum(rng.exponential(1 / 130, 20_000)).tolist()
    service = rng.exponential(0.02, 20_000).tolist()
    pod, events, _ = make_pod(service, max_concurrency=3, max_queue=10**9, seconds=200)
    feed(pod, events, arrivals, until=arrivals[-1] + 10)
    free = [0.0] * 3
    expected = []
    for arrival, seconds in zip(arrivals, service, strict=True):
        start = max(arrival, heapq.heappop(free))
        heapq.heappush(free, start + seconds)
        expected.append(start + seconds - arrival)
    assert sorted(pod.take_latencies()) == pytest.approx(sorted(expected), abs=1e-12)


def test_pushed_gauges_are_time_averages_over_the_interval() -> None:
    pod, events, _ = make_pod([1.0, 1.0], max_concurrency=1)
    feed(pod, events, [0.5, 0.6], until=2.0)
    # concurrency: 1 on [0.5, 0.6), 2 on [0.6, 1.5), 1 on [1.5, 2); waiting: 1 on [0.6, 1.5)
    assert pod.take_mean_gauges(2.0) == pytest.approx((0.9 / 2, 2.4 / 2))
    events.run([], lambda t: None, until=3.0)
    assert pod.take_mean_gauges(3.0) == pytest.approx((0.0, 0.5))  # until 2.5, then idle
    assert pod.queue_seconds == pytest.approx(0.9)


def test_batches_fill_or_wait_for_their_deadline_and_grow_in_cost() -> None:
    pod, events, _ = make_pod(
        [1.0] * 5, max_concurrency=1, max_batch_size=3, batch_timeout_seconds=0.1, batch_growth=0.5
    )
    feed(pod, events, [0.0, 0.02, 0.05], until=0.06)
    # a full batch of three starts at 0.05, holding the slot 1 + 0.5 * 2 = 2 draws
    assert (pod.concurrency, pod.queue_depth) == (3, 0)
    feed(pod, events, [0.5], until=4.0)
    # the fourth waited for the slot (2.05); its deadline had passed, so it went alone
    assert pod.take_latencies() == pytest.approx([2.05, 2.03, 2.0, 2.55])
    feed(pod, events, [4.0, 4.05], until=4.07)
    assert (pod.concurrency, pod.queue_depth) == (2, 0)  # gathered: in a slot, not waiting
    events.run([], lambda t: None, until=10.0)
    # the deadline (4.1) started a batch of two: 1 + 0.5 draws
    assert pod.take_latencies() == pytest.approx([1.6, 1.55])


def test_a_deleted_pod_drains_then_exits() -> None:
    pod, events, tally = make_pod([1.0] * 4, max_concurrency=1)
    gone: list[float] = []
    pod.on_exit = lambda p, time: gone.append(time)
    feed(pod, events, [0.0, 0.1, 0.2], until=0.5)
    pod.terminate(0.5)
    assert (pod.phase, pod.ready, pod.serving, pod.ready_since) == ("Running", False, False, 0.5)
    events.run([], lambda t: None, until=100.0)
    assert gone == [3.0] and pod.phase == "Succeeded"
    assert len(pod.take_latencies()) == 3 and sum(tally.unserved_per_second) == 0


def test_a_drain_that_takes_too_long_is_cut() -> None:
    pod, events, tally = make_pod([10.0] * 4, max_concurrency=1, drain_timeout_seconds=5.0)
    gone: list[float] = []
    pod.on_exit = lambda p, time: gone.append(time)
    feed(pod, events, [0.0, 0.1, 0.2], until=0.5)
    pod.terminate(1.0)
    events.run([], lambda t: None, until=100.0)
    assert gone == [6.0]
    assert pod.take_latencies() == [] and pod.cut == 3
    assert sum(tally.unserved_per_second) == 3


def test_an_idle_or_starting_pod_exits_at_once() -> None:
    pod, events, _ = make_pod([1.0])
    gone: list[float] = []
    pod.on_exit = lambda p, time: gone.append(time)
    pod.terminate(2.0)
    assert gone == [2.0]
    starting = Pod("s", "u2", 0.0, PodModel(), events, iter([1.0]), Tally(1.0, 10))
    assert starting.phase == "Pending"
    starting.terminate(1.0)
    assert starting.exited == 1.0


@dataclass
class _Endpoint:
    """What the Service needs of a pod; records what it was sent."""

    name: str
    received: list[float] = field(default_factory=list)
    endpoint_index: int = -1
    release: object = None

    def admit(self, time: float) -> bool:
        self.received.append(time)
        return True


def test_the_service_picks_exactly_as_the_demo_balancer() -> None:
    """Pick for pick against ``localcluster.balancer.Balancer._pick`` (fewest in flight, ties
    round-robin), while requests end at random and pods leave and join."""
    rng = random.Random(11)
    service = Service(Tally(1.0, 10))
    reference = Balancer(lambda: [])
    pods = [_Endpoint(f"pod-{i}") for i in range(6)]
    live = pods[:4]
    service.set_endpoints(live)  # type: ignore[arg-type]
    for step in range(3000):
        if step == 1000:  # two leave, two join (in creation order)
            live = [pods[0], pods[2], pods[4], pods[5]]
            service.set_endpoints(live)  # type: ignore[arg-type]
        busy = [p for p in live if reference._in_flight.get(p.name, 0)]
        if busy and rng.random() < 0.45:
            pod = rng.choice(busy)
            reference._in_flight[pod.name] -= 1
            service.release(pod.endpoint_index)
            continue
        expected = reference._pick([p.name for p in live])
        reference._in_flight[expected] = reference._in_flight.get(expected, 0) + 1
        before = [len(p.received) for p in live]
        service.dispatch(float(step))
        chosen = next(p for p, n in zip(live, before, strict=True) if len(p.received) > n)
        assert chosen.name == expected, step
    assert service.in_flight == [reference._in_flight.get(p.name, 0) for p in live]


def test_without_endpoints_the_service_refuses() -> None:
    tally = Tally(1.0, 10)
    service = Service(tally)
    service.dispatch(3.5)
    assert service.refused == 1 and tally.unserved_per_second[3] == 1


def test_pod_model_problems_name_the_flag() -> None:
    assert PodModel().problems() == []
    problems = PodModel(max_concurrency=0, max_queue=-1, batch_growth=-1).problems()
    assert any("--max-concurrency" in p for p in problems)
    assert any("--max-queue" in p for p in problems)
    assert any("--batch-growth" in p for p in problems)
