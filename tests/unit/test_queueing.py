"""Tests for adapter.queueing: Erlang B/C against published tables and exact arithmetic, waits and
times in system against a seeded dispatch-level simulation, and required_replicas' guards.

The simulation (:func:`dispatch`) plays single requests: Poisson arrivals, each sent by the
balancer to a pod, each pod a FIFO queue in front of its slots. Its random numbers are seeded, so
every run is the same run; each tolerance below is wide enough for other seeds too (checked with
ten), narrow enough to fail a model that is off by the factors that matter (M/D/c's half, JSQ's
place between its bounds).
"""

from __future__ import annotations

import doctest
import heapq
import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from adapter import queueing
from adapter.queueing import Balancing, Basis, MissingInput, ServiceTime
from adapter.sketch import LatencySketch

JSQ, RANDOM, POOLED = Balancing.JOIN_SHORTEST_QUEUE, Balancing.RANDOM, Balancing.POOLED


# --- the simulation ---------------------------------------------------------------------------


def dispatch(
    pods: int,
    slots: int,
    arrival_rate: float,
    service_seconds: np.ndarray,
    rng: np.random.Generator,
    balancing: Balancing = JSQ,
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate ``len(service_seconds)`` requests; return (waits, service times) after warm-up.

    Join-the-shortest-queue sends each request to the pod with the fewest requests in flight
    (waiting or in service; ties to the first such pod), random to a uniformly drawn pod; pooled
    is one pod with all the slots. In a pod a request takes the slot that frees first, no sooner
    than it arrives (FIFO). The first tenth of the requests is dropped as warm-up.
    """
    if balancing is POOLED:
        pods, slots = 1, pods * slots
    count = service_seconds.size
    arrivals = np.cumsum(rng.exponential(1.0 / arrival_rate, count)).tolist()
    chosen = rng.integers(pods, size=count).tolist()
    slot_free = [[0.0] * slots for _ in range(pods)]  # per pod, a heap of when each slot frees
    in_flight: list[list[float]] = [[] for _ in range(pods)]  # per pod, a heap of departures
    waits = np.empty(count)
    for i, (arrival, service) in enumerate(zip(arrivals, service_seconds.tolist(), strict=True)):
        if balancing is JSQ:
            fewest = math.inf
            for p, departures in enumerate(in_flight):
                while departures and departures[0] <= arrival:
                    heapq.heappop(departures)
                if len(departures) < fewest:
                    fewest, pod = len(departures), p
        else:
            pod = chosen[i]
        start = max(arrival, heapq.heappop(slot_free[pod]))
        heapq.heappush(slot_free[pod], start + service)
        heapq.heappush(in_flight[pod], start + service)
        waits[i] = start - arrival
    return waits[count // 10 :], service_seconds[count // 10 :]


# --- Erlang B and C ---------------------------------------------------------------------------

# The 1 % grade-of-service column of the Erlang B table printed in telephone-traffic references:
# the traffic (erlangs) offered to N trunks that are blocked 1 % of the time, to the table's
# precision. (Exact values are checked below against rational arithmetic.)
ERLANG_B_ONE_PERCENT = [
    (1, 0.0101),
    (2, 0.153),
    (3, 0.455),
    (4, 0.869),
    (5, 1.361),
    (10, 4.461),
    (20, 12.031),
    (50, 37.901),
    (100, 84.064),
]


@pytest.mark.parametrize(("servers", "erlangs"), ERLANG_B_ONE_PERCENT)
def test_erlang_b_matches_the_one_percent_table(servers: int, erlangs: float) -> None:
    # the table rounds the traffic to 3-4 digits, which moves B by under 0.6 % of itself
    assert queueing.erlang_b(servers, erlangs) == pytest.approx(0.01, rel=0.006)


def exact_erlang_c(servers: int, offered: Fraction) -> Fraction:
    """Erlang C from its textbook formula in exact rational arithmetic: an independent method."""
    terms = [offered**k / math.factorial(k) for k in range(servers)]
    top = offered**servers / math.factorial(servers) * servers / (servers - offered)
    return top / (sum(terms) + top)


def test_erlang_c_matches_the_call_centre_worked_example() -> None:
    # Mitan Ltd, "The Erlang-C formula" (mitan.co.uk/erlang/elgcmath.htm), reproduced by many
    # staffing references: 360 calls per half hour of 240 s each on 55 agents, 15 s target.
    arrival_rate, handle_seconds, agents = 360 / 1800, 240.0, 55
    offered = arrival_rate * handle_seconds
    assert offered == 48.0
    exact = float(exact_erlang_c(agents, Fraction(48)))
    assert exact == pytest.approx(0.2387, abs=5e-5)  # probability of waiting: 24 %
    assert queueing.erlang_c(agents, offered) == pytest.approx(exact, rel=1e-12)
    waiting = queueing.waiting_time(arrival_rate, handle_seconds, agents)
    assert waiting.probability == pytest.approx(exact, rel=1e-12)
    assert waiting.mean_seconds == pytest.approx(8.18, abs=0.005)  # average speed of answer
    assert 1 - waiting.survival(15.0) == pytest.approx(0.846, abs=5e-4)  # service level in 15 s


def test_erlang_c_of_two_servers_is_the_closed_form() -> None:
    # C(2, a) = a^2 / (2 + a): two 1 Mbit/s lines, 150 packets/s of 10 kbit (a = 1.5) wait 9/14
    assert queueing.erlang_c(2, 1.5) == pytest.approx(9 / 14, rel=1e-14)
    for a in (0.1, 0.5, 1.0, 1.9):
        assert queueing.erlang_c(2, a) == pytest.approx(a * a / (2 + a), rel=1e-13)


@pytest.mark.parametrize("servers", [1, 3, 8, 25, 60])
def test_erlang_c_equals_exact_arithmetic(servers: int) -> None:
    for utilisation in (Fraction(1, 10), Fraction(1, 2), Fraction(4, 5), Fraction(99, 100)):
        offered = utilisation * servers
        exact = float(exact_erlang_c(servers, offered))
        assert queueing.erlang_c(servers, float(offered)) == pytest.approx(exact, rel=1e-11)


def plain_inverse_erlang_b(servers: int, offered: float) -> float:
    """1/B by the recursion from y(0) = 1, every step (what the warm start skips)."""
    y = 1.0
    for k in range(1, servers + 1):
        y = 1.0 + k / offered * y
    return y


@pytest.mark.parametrize("offered", [150.0, 2_000.0, 30_000.0])
def test_erlang_b_of_large_loads_starts_late_without_losing_precision(offered: float) -> None:
    spread = math.sqrt(offered)
    for servers in (int(offered - 3 * spread), int(offered), int(offered + 3 * spread)):
        plain = 1.0 / plain_inverse_erlang_b(servers, offered)
        assert queueing.erlang_b(servers, offered) == pytest.approx(plain, rel=1e-12)


def test_erlang_c_of_a_large_fleet_matches_log_space_sums() -> None:
    # 800 slots at 95 %: a**c / c! overflows a float; the terms summed as logarithms do not
    servers, offered = 800, 760.0
    log_terms = [k * math.log(offered) - math.lgamma(k + 1) for k in range(servers)]
    log_top = servers * math.log(offered) - math.lgamma(servers + 1)
    log_top += math.log(servers / (servers - offered))
    peak = max(*log_terms, log_top)
    total = sum(math.exp(t - peak) for t in log_terms) + math.exp(log_top - peak)
    assert queueing.erlang_c(servers, offered) == pytest.approx(
        math.exp(log_top - peak) / total, rel=1e-10
    )
    assert 0.0 < queueing.erlang_c(5_000, 4_900.0) < 1.0
    assert queueing.erlang_b(100_000, 1_000.0) == 0.0  # underflows, stops early


def test_erlang_c_falls_with_servers_and_rises_with_load() -> None:
    values = [queueing.erlang_c(servers, 40.0) for servers in range(41, 80)]
    assert all(a > b for a, b in itertools.pairwise(values))
    loads = [queueing.erlang_c(50, load) for load in np.linspace(1.0, 49.0, 40)]
    assert all(a < b for a, b in itertools.pairwise(loads))


def test_erlang_edges_and_bad_arguments() -> None:
    assert queueing.erlang_c(4, 0.0) == 0.0
    assert queueing.erlang_c(4, 4.0) == 1.0 and queueing.erlang_c(4, 9.0) == 1.0
    assert queueing.erlang_b(0, 3.0) == 1.0 and queueing.erlang_b(3, 0.0) == 0.0
    assert 0.0 < queueing.erlang_b(3, 9.0) < 1.0  # overload: a loss system still has a value
    for call in (
        lambda: queueing.erlang_c(0, 1.0),
        lambda: queueing.erlang_c(-1, 1.0),
        lambda: queueing.erlang_c(2.5, 1.0),  # type: ignore[arg-type]
        lambda: queueing.erlang_c(4, -1.0),
        lambda: queueing.erlang_c(4, math.nan),
        lambda: queueing.erlang_b(4, math.inf),
        lambda: queueing.erlang_c(10**7, 2e6),  # above MAX_OFFERED_LOAD
    ):
        with pytest.raises(ValueError):
            call()


def test_docstring_examples() -> None:
    failed, attempted = doctest.testmod(queueing)
    assert (failed, attempted > 0) == (0, True)


# --- M/M/c and M/G/c waits against the simulation ---------------------------------------------


def test_mmc_wait_and_time_in_system_tails_match_a_simulation() -> None:
    rng = np.random.default_rng(7)
    slots, mean, utilisation = 8, 0.02, 0.8
    rate = utilisation * slots / mean
    waits, services = dispatch(1, slots, rate, rng.exponential(mean, 150_000), rng)
    model = queueing.waiting_time(rate, mean, slots)
    assert waits.mean() == pytest.approx(model.mean_seconds, rel=0.08)
    assert np.mean(waits > 0) == pytest.approx(model.probability, rel=0.05)
    times = waits + services
    for target in (0.1, 0.01):
        wait_t = math.log(model.probability / target) / model.rate  # P(W > wait_t) = target
        assert np.mean(waits > wait_t) == pytest.approx(target, rel=0.3)
        sojourn_t = float(np.quantile(times, 1 - target))
        predicted = queueing.exponential_time_in_system_survival(model, mean, sojourn_t)
        assert predicted == pytest.approx(target, rel=0.15)


def test_time_in_system_closed_form_equals_the_convolution() -> None:
    rng = np.random.default_rng(1)
    mean = 0.05
    service = ServiceTime.from_samples(rng.exponential(mean, 400_000))
    for waiting in (
        queueing.waiting_time(150.0, mean, 10),  # rate apart from mu
        queueing.Waiting(0.3, 1 / mean),  # rate == mu: the Erlang-2 case
        queueing.Waiting(1.0, 0.0),  # no steady state
    ):
        for t in (0.0, 0.02, 0.1, 0.3):
            closed = queueing.exponential_time_in_system_survival(waiting, mean, t)
            convolved = queueing.time_in_system_survival(waiting, service, t)
            assert convolved == pytest.approx(closed, abs=0.004), (waiting, t)
    assert queueing.exponential_time_in_system_survival(queueing.Waiting(1.0, 0.0), mean, 9) == 1


def test_deterministic_service_waits_about_half_as_long() -> None:
    # Allen-Cunneen scales the wait by (Ca^2 + Cs^2) / 2: 1/2 for M/D/c against M/M/c; for more
    # than one slot the true ratio is a little above (0.50 to 0.58 over ten seeds here)
    rng = np.random.default_rng(11)
    slots, mean, rate = 4, 0.05, 0.8 * 4 / 0.05
    exponential, _ = dispatch(1, slots, rate, rng.exponential(mean, 100_000), rng)
    deterministic, _ = dispatch(1, slots, rate, np.full(100_000, mean), rng)
    assert 0.45 <= deterministic.mean() / exponential.mean() <= 0.62
    mmc = queueing.waiting_time(rate, mean, slots)
    mdc = queueing.waiting_time(rate, mean, slots, service_scv=0.0)
    assert mdc.mean_seconds == pytest.approx(mmc.mean_seconds / 2, rel=1e-12)
    assert deterministic.mean() == pytest.approx(mdc.mean_seconds, rel=0.15)
    assert (
        queueing.waiting_time(rate, mean, slots, service_scv=0.0, arrival_scv=0.0).mean_seconds == 0
    )


def test_waiting_edges() -> None:
    assert queueing.waiting_time(0.0, 0.1, 4, 3) == queueing.Waiting(0.0, math.inf)
    assert queueing.waiting_time(0.0, 0.1, 4).survival(0.0) == 0.0
    saturated = queueing.waiting_time(120.0, 0.1, 4, 3)  # 12 erlangs on 12 slots
    assert saturated == queueing.Waiting(1.0, 0.0)
    assert saturated.mean_seconds == math.inf and saturated.survival(1e6) == 1.0
    for probability, rate in ((1.5, 1.0), (-0.1, 1.0), (0.5, -1.0), (0.5, math.nan)):
        with pytest.raises(ValueError):
            queueing.Waiting(probability, rate)
    for bad in (
        {"arrival_rate": -1.0},
        {"mean_service_seconds": 0.0},
        {"slots_per_pod": 0},
        {"pods": 0},
        {"service_scv": -0.1},
    ):
        arguments = {"arrival_rate": 1.0, "mean_service_seconds": 0.1, "slots_per_pod": 4}
        with pytest.raises(ValueError):
            queueing.waiting_time(**(arguments | bad))  # type: ignore[arg-type]


# --- the balancer -----------------------------------------------------------------------------


@pytest.mark.parametrize("pods", [2, 3, 6, 10])
@pytest.mark.parametrize("slots", [1, 4, 8])
@pytest.mark.parametrize("utilisation", [0.3, 0.8, 0.95])
def test_join_shortest_queue_lies_between_pooled_and_independent_pods(
    pods: int, slots: int, utilisation: float
) -> None:
    mean = 0.05
    rate = utilisation * pods * slots / mean
    jsq, random_, pooled = (
        queueing.waiting_time(rate, mean, slots, pods, balancing=b) for b in (JSQ, RANDOM, POOLED)
    )
    for t in (0.0, 0.01, 0.05, 0.2, 1.0):
        assert pooled.survival(t) <= jsq.survival(t) <= random_.survival(t)
    assert pooled.mean_seconds < jsq.mean_seconds < random_.mean_seconds


def test_join_shortest_queue_of_one_pod_is_mmc_and_of_heavy_traffic_is_pooled() -> None:
    mmc = queueing.waiting_time(60.0, 0.05, 4, 1, balancing=POOLED)
    assert mmc == queueing.Waiting(queueing.erlang_c(4, 3.0), 4 / 0.05 - 60.0)
    for balancing in (JSQ, RANDOM):
        one_pod = queueing.waiting_time(60.0, 0.05, 4, 1, balancing=balancing)
        assert one_pod.probability == mmc.probability
        assert one_pod.rate == pytest.approx(mmc.rate, rel=1e-14)
    near_capacity = queueing.waiting_time(0.999 * 16 / 0.05, 0.05, 4, 4)
    pooled = queueing.waiting_time(0.999 * 16 / 0.05, 0.05, 4, 4, balancing=POOLED)
    assert near_capacity.mean_seconds == pytest.approx(pooled.mean_seconds, rel=0.01)


@pytest.mark.parametrize(
    ("pods", "slots", "utilisation", "seed"),
    [(3, 4, 0.8, 21), (4, 1, 0.8, 22), (6, 4, 0.85, 23)],
)
def test_join_shortest_queue_matches_a_dispatch_simulation(
    pods: int, slots: int, utilisation: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    mean = 0.05
    rate = utilisation * pods * slots / mean
    waits, _ = dispatch(pods, slots, rate, rng.exponential(mean, 120_000), rng)
    jsq, random_, pooled = (
        queueing.waiting_time(rate, mean, slots, pods, balancing=b) for b in (JSQ, RANDOM, POOLED)
    )
    simulated = waits.mean()
    assert pooled.mean_seconds < simulated < random_.mean_seconds / 3  # JSQ pools most of it
    assert 0.95 <= jsq.mean_seconds / simulated <= 1.35  # errs on the side of more replicas
    wait_at_one_percent = math.log(jsq.probability / 0.01) / jsq.rate
    assert 0.005 <= np.mean(waits > wait_at_one_percent) <= 0.016


def test_join_shortest_queue_queues_about_five_times_less_than_independent_pods() -> None:
    # issue 16: at 80 % load, the demo's balancer (4 slots a pod) queues about 5x less
    rng = np.random.default_rng(5)
    mean, pods, slots = 0.05, 4, 4
    rate = 0.8 * pods * slots / mean
    service = rng.exponential(mean, 120_000)
    jsq, _ = dispatch(pods, slots, rate, service, rng, JSQ)
    independent, _ = dispatch(pods, slots, rate, service, rng, RANDOM)
    assert 3.5 < independent.mean() / jsq.mean() < 9
    model = queueing.waiting_time(rate, mean, slots, pods)
    random_model = queueing.waiting_time(rate, mean, slots, pods, balancing=RANDOM)
    assert independent.mean() == pytest.approx(random_model.mean_seconds, rel=0.15)
    assert 3.5 < random_model.mean_seconds / model.mean_seconds < 9


def test_demo_service_time_behind_join_shortest_queue_matches_the_simulation() -> None:
    # the demo's pods: lognormal service (median 50 ms, sigma 0.4, Cs^2 = 0.17), 4 slots each
    rng = np.random.default_rng(31)
    pods, slots = 3, 4
    draws = 0.05 * rng.lognormal(0.0, 0.4, 150_000)
    service = ServiceTime.from_sketch(LatencySketch.from_values(draws[:20_000]))
    assert service is not None
    rate = 0.8 * pods * slots / service.mean_seconds
    waits, services = dispatch(pods, slots, rate, draws, rng)
    times = waits + services
    waiting, as_if_exponential = (
        queueing.waiting_time(rate, service.mean_seconds, slots, pods, service_scv=scv)
        for scv in (service.scv, 1.0)
    )
    p90, p99 = (float(np.quantile(times, q)) for q in (0.9, 0.99))
    assert queueing.time_in_system_survival(waiting, service, p90) == pytest.approx(0.1, rel=0.2)
    assert queueing.time_in_system_survival(waiting, service, p99) == pytest.approx(0.01, rel=0.35)
    # without the variability correction the tail would be overstated about threefold
    assert queueing.time_in_system_survival(as_if_exponential, service, p99) > 0.018


# --- service times ----------------------------------------------------------------------------


def test_service_time_from_a_sketch_keeps_mean_spread_and_tail() -> None:
    rng = np.random.default_rng(3)
    draws = rng.gamma(2.0, 0.02, 50_000)
    exact = ServiceTime.from_samples(draws)
    binned = ServiceTime.from_sketch(LatencySketch.from_values(np.append(draws, [0.0, 0.0])))
    assert binned is not None
    assert binned.values[0] == 0.0 and binned.weights[0] == pytest.approx(2 / 50_002)
    assert binned.mean_seconds == pytest.approx(exact.mean_seconds, rel=0.01)
    assert exact.scv == pytest.approx(0.5, rel=0.03)  # gamma of shape 2
    assert binned.scv == pytest.approx(exact.scv, rel=0.03)
    for t in (0.01, 0.04, 0.1):
        assert binned.survival(t) == pytest.approx(exact.survival(t), abs=0.01)
    assert ServiceTime.from_sketch(LatencySketch.empty()) is None


def test_service_time_checks_its_values() -> None:
    assert ServiceTime.from_samples([0.1, 0.1, 0.2, 0.4]).scv == pytest.approx(0.375)
    assert ServiceTime.from_samples([0.0]).scv == 0.0
    for values, weights in (
        ([0.2, 0.1], [0.5, 0.5]),
        ([0.1, 0.1], [0.5, 0.5]),
        ([-0.1, 0.1], [0.5, 0.5]),
        ([0.1, 0.2], [0.5, 0.6]),
        ([0.1, 0.2], [1.0, 0.0]),
        ([], []),
    ):
        with pytest.raises(ValueError):
            ServiceTime(np.array(values), np.array(weights))
    for samples in ([], [math.nan], [-1.0]):
        with pytest.raises(ValueError):
            ServiceTime.from_samples(samples)
    service = ServiceTime.from_samples([0.1, 0.3])
    with pytest.raises(ValueError):
        service.values[0] = 0.2  # read-only


# --- required replicas ------------------------------------------------------------------------

DEMO = ServiceTime.from_samples(0.05 * np.random.default_rng(0).lognormal(0.0, 0.4, 20_000))


def estimate(**overrides: object) -> queueing.ReplicaEstimate:
    arguments: dict[str, object] = {
        "arrival_rate": 200.0,
        "service": DEMO,
        "slots_per_pod": 4,
        "ready_pods": 1,
        "slo_seconds": 0.5,
    }
    return queueing.required_replicas(**(arguments | overrides))  # type: ignore[arg-type]


def misses_at(pods: int, rate: float, slo: float, balancing: Balancing = JSQ) -> float:
    waiting = queueing.waiting_time(
        rate, DEMO.mean_seconds, 4, pods, balancing=balancing, service_scv=DEMO.scv
    )
    return queueing.time_in_system_survival(waiting, DEMO, slo)


@pytest.mark.parametrize("rate", [5.0, 80.0, 200.0, 1_000.0])
@pytest.mark.parametrize("slo", [0.15, 0.2, 0.5])
def test_required_replicas_is_the_smallest_count_meeting_the_slo(rate: float, slo: float) -> None:
    result = estimate(arrival_rate=rate, slo_seconds=slo)
    assert result.basis is Basis.MODEL and result.meets_slo
    assert result.replicas == result.model_replicas
    assert result.replicas * 4 > rate * DEMO.mean_seconds
    assert misses_at(result.replicas, rate, slo) <= 0.01
    assert result.miss_probability == pytest.approx(misses_at(result.replicas, rate, slo))
    assert result.service_miss_probability == DEMO.survival(slo)
    if (result.replicas - 1) * 4 > rate * DEMO.mean_seconds:
        assert misses_at(result.replicas - 1, rate, slo) > 0.01


def test_required_replicas_rises_with_rate_and_falls_with_the_slo() -> None:
    by_rate = [estimate(arrival_rate=r).replicas for r in np.linspace(1.0, 3_000.0, 60)]
    assert by_rate == sorted(by_rate) and by_rate[0] == 1 and by_rate[-1] > 40
    slos = np.geomspace(0.05, 5.0, 60)  # through the service-bound zone below ~0.15 s
    by_slo = [estimate(arrival_rate=600.0, slo_seconds=s).replicas for s in slos]
    assert by_slo == sorted(by_slo, reverse=True)
    by_quantile = [estimate(quantile=q).replicas for q in (0.5, 0.9, 0.99, 0.999, 0.9999)]
    assert by_quantile == sorted(by_quantile)
    balancers = [
        estimate(arrival_rate=600.0, slo_seconds=0.15, balancing=b).replicas
        for b in (POOLED, JSQ, RANDOM)
    ]
    assert balancers == sorted(balancers) and balancers[0] < balancers[2]


def test_required_replicas_meets_the_slo_in_the_simulation() -> None:
    # the model's count keeps the simulated p95 under the SLO; one pod fewer (still stable) breaks
    # it; and the simulated misses are what the model predicts for both counts
    rng = np.random.default_rng(41)
    rate, slo, quantile = 340.0, 0.12, 0.95
    result = estimate(arrival_rate=rate, slo_seconds=slo, quantile=quantile)
    assert (result.replicas - 1) * 4 > rate * DEMO.mean_seconds
    draws = 0.05 * rng.lognormal(0.0, 0.4, 100_000)
    for pods, meets in ((result.replicas, True), (result.replicas - 1, False)):
        waits, services = dispatch(pods, 4, rate, draws, rng)
        simulated = float(np.mean(waits + services > slo))
        assert (simulated <= 1 - quantile) is meets
        assert simulated == pytest.approx(misses_at(pods, rate, slo), rel=0.3)


def test_service_time_over_the_slo_asks_for_the_most_useful_count() -> None:
    assert DEMO.survival(0.09) > 0.01  # over 1 % of requests take longer than 90 ms to serve
    bound = estimate(arrival_rate=600.0, slo_seconds=0.09)
    assert bound.basis is Basis.SERVICE_BOUND and not bound.meets_slo
    assert bound.miss_probability >= bound.service_miss_probability == DEMO.survival(0.09)
    # sized for the tightest SLO the service time leaves room for: 90 % of the budget to it
    tightest = DEMO.quantile(1 - (1 - queueing.MIN_WAITING_SHARE) * 0.01)
    edge = estimate(arrival_rate=600.0, slo_seconds=tightest)
    assert edge.basis is Basis.MODEL and edge.meets_slo
    assert edge.service_miss_probability <= 0.009 < DEMO.survival(tightest * 0.999)
    assert bound.replicas == edge.replicas
    for slo in (0.001, 0.02, 0.06):  # and the same for any tighter SLO: finite, not maxReplicas
        assert estimate(arrival_rate=600.0, slo_seconds=slo).replicas == bound.replicas
    assert bound.replicas < 2 * estimate(arrival_rate=600.0, slo_seconds=0.5).replicas


def test_required_replicas_guards() -> None:
    idle = estimate(arrival_rate=0.0, service=None, ready_pods=5)
    assert (idle.replicas, idle.basis, idle.meets_slo) == (0, Basis.NO_ARRIVALS, True)
    held = estimate(arrival_rate=0.0, service=None, ready_pods=5, queue_growing=True)
    assert (held.replicas, held.basis, held.model_replicas) == (5, Basis.QUEUE_GROWING, 0)
    model = estimate(arrival_rate=200.0).replicas
    growing = estimate(arrival_rate=200.0, ready_pods=model + 3, queue_growing=True)
    assert (growing.replicas, growing.model_replicas) == (model + 3, model)
    above = estimate(arrival_rate=200.0, ready_pods=model - 1, queue_growing=True)
    assert (above.replicas, above.basis) == (model, Basis.MODEL)
    assert estimate(ready_pods=model + 3).replicas == model  # shrinking is fine when not growing
    instant = estimate(service=ServiceTime.from_samples([0.0]))  # all under the sketch's 1 ns
    assert instant.replicas == 1


@pytest.mark.parametrize(
    ("overrides", "missing"),
    [
        ({"slots_per_pod": None}, "inference_worker_slots"),
        ({"slots_per_pod": 0}, "inference_worker_slots"),
        ({"slots_per_pod": None, "arrival_rate": 0.0}, "inference_worker_slots"),
        ({"service": None}, "service_time"),
    ],
)
def test_missing_inputs_name_the_push_field(overrides: dict[str, object], missing: str) -> None:
    with pytest.raises(MissingInput) as raised:
        estimate(**overrides)
    assert raised.value.missing == missing
    assert missing in str(raised.value)


@pytest.mark.parametrize(
    "overrides",
    [
        {"slo_seconds": 0.0},
        {"slo_seconds": math.inf},
        {"quantile": 1.0},
        {"quantile": 0.0},
        {"arrival_rate": -1.0},
        {"arrival_rate": math.nan},
        {"ready_pods": -1},
        {"arrival_rate": 1e9},  # 5e7 erlangs: beyond MAX_OFFERED_LOAD
    ],
)
def test_bad_arguments_are_value_errors_not_missing_inputs(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError) as raised:
        estimate(**overrides)
    assert not isinstance(raised.value, MissingInput)


def test_required_replicas_of_a_large_fleet() -> None:
    # 20,000 requests/s of ~52 ms on 8 slots a pod: about 1,000 slots busy
    result = estimate(arrival_rate=20_000.0, slots_per_pod=8)
    offered = 20_000.0 * DEMO.mean_seconds
    assert offered / 8 < result.replicas < 1.1 * offered / 8
    assert result.meets_slo
