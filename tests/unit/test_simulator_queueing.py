"""``simulator.queueing``: the references the simulator is tested against, checked on their own:
known closed forms, limits, and consistency between the stationary law and the time in system
(Little's law ties the mean queue to the integral of the wait's tail)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulator.queueing import JoinShortestQueue, MDc, MMc, erlang_plus_exponential_tail


def mean_of(tail, upper: float, points: int = 3_000) -> float:  # type: ignore[no-untyped-def]
    """The mean of a non-negative variable from its tail, ``integral of P(X > t) dt``."""
    grid = np.linspace(0.0, upper, points)
    values = np.array([tail(t) for t in grid])
    return float(np.sum((values[1:] + values[:-1]) / 2) * (grid[1] - grid[0]))


@pytest.mark.parametrize(("rate", "slots"), [(0.5, 1), (6.0, 8)])
def test_join_the_shortest_queue_of_one_pod_is_m_m_c(rate: float, slots: int) -> None:
    exact = MMc(rate, 1.0, slots)
    chain = JoinShortestQueue(rate, 1.0, slots, pods=1, max_per_pod=80)
    assert chain.wait_probability == pytest.approx(exact.wait_probability, rel=1e-9)
    assert chain.mean_queue == pytest.approx(exact.mean_queue, rel=1e-6)  # truncated at 80
    assert chain.time_in_system_quantile(0.99) == pytest.approx(
        exact.time_in_system_quantile(0.99), rel=1e-6
    )


def test_m_d_1_is_pollaczek_khinchine_and_erlangs_waiting_time() -> None:
    rho, d = 0.7, 1.0
    queue = MDc(rho, d, 1)
    assert queue.mean_queue == pytest.approx(rho**2 / (2 * (1 - rho)), rel=1e-9)
    assert queue.wait_probability == pytest.approx(rho, rel=1e-9)
    for t in (0.0, 0.3, 1.0, 1.7, 4.2):
        # Erlang (1909): P(W <= t) = (1 - rho) sum over k <= t/D of
        # (lambda (kD - t))^k / k! e^(-lambda (kD - t))
        erlang = (1 - rho) * sum(
            (rho * (k * d - t)) ** k / math.factorial(k) * math.exp(-rho * (k * d - t))
            for k in range(math.floor(t / d) + 1)
        )
        assert queue.wait_cdf(t) == pytest.approx(erlang, rel=1e-9, abs=1e-12)


def test_m_d_c_mean_wait_from_its_tail_is_littles_law() -> None:
    rate, slots = 3.0, 4
    queue = MDc(rate, 1.0, slots)
    assert mean_of(lambda t: 1 - queue.wait_cdf(t), 30.0) == pytest.approx(
        queue.mean_queue / rate, rel=2e-3
    )
    # deterministic service queues about half as much as exponential (Pollaczek-Khinchine for
    # one slot, close to it for several)
    assert 0.4 < queue.mean_queue / MMc(rate, 1.0, slots).mean_queue < 0.6


def test_join_the_shortest_queue_is_consistent_with_littles_law() -> None:
    rate = 2.4
    queue = JoinShortestQueue(rate, 1.0, slots=2, pods=2)
    # the mean time in system from its tail is (mean queue + busy slots) / rate
    mean_time = mean_of(queue.time_in_system_tail, 40.0)
    assert mean_time == pytest.approx((queue.mean_queue + rate) / rate, rel=2e-3)
    roomier = JoinShortestQueue(rate, 1.0, slots=2, pods=2, max_per_pod=60)
    assert roomier.mean_queue == pytest.approx(queue.mean_queue, rel=1e-6)  # truncation


@pytest.mark.parametrize(("rate", "slots"), [(1.2, 1), (2.4, 2), (3.2, 2)])
def test_two_pods_lie_between_one_pooled_queue_and_two_independent_ones(
    rate: float, slots: int
) -> None:
    queue = JoinShortestQueue(rate, 1.0, slots, pods=2)
    pooled, independent = MMc(rate, 1.0, 2 * slots), MMc(rate / 2, 1.0, slots)
    assert pooled.mean_queue < queue.mean_queue < 2 * independent.mean_queue
    p99 = queue.time_in_system_quantile(0.99)
    assert pooled.time_in_system_quantile(0.99) < p99 < independent.time_in_system_quantile(0.99)
    # fewer arrivals wait than in the pooled queue (see docs/simulate.md), never more than in
    # independent pods
    assert queue.wait_probability < independent.wait_probability


def test_erlang_plus_exponential_tails() -> None:
    assert erlang_plus_exponential_tail(0, 3.0, 1.0, 2.0) == pytest.approx(math.exp(-2.0))
    # Exp(2) + Exp(1): (2 e^-t - e^-2t) / (2 - 1)
    assert erlang_plus_exponential_tail(1, 2.0, 1.0, 1.5) == pytest.approx(
        2 * math.exp(-1.5) - math.exp(-3.0)
    )
    # equal rates: Erlang(k + 1, mu)
    assert erlang_plus_exponential_tail(2, 1.0, 1.0, 2.0) == pytest.approx(
        math.exp(-2.0) * (1 + 2.0 + 2.0**2 / 2)
    )
    with pytest.raises(ValueError, match="as fast"):
        erlang_plus_exponential_tail(1, 0.5, 1.0, 1.0)


def test_the_references_refuse_an_unstable_queue() -> None:
    with pytest.raises(ValueError, match="dense solve"):
        JoinShortestQueue(2.0, 1.0, 1, pods=3, max_per_pod=60)
    for make in (
        lambda: MMc(4.0, 1.0, 4),
        lambda: MDc(2.0, 1.0, 2),
        lambda: JoinShortestQueue(4.0, 1.0, 2, 2),
    ):
        with pytest.raises(ValueError, match="need"):
            make()
