"""The simulator against queueing theory, with the replica count pinned (minReplicas =
maxReplicas), Poisson arrivals and the whole pipeline running (pods, Service, pushes, store,
HPA syncs): one pod agrees with M/M/c within 5 % and with M/D/c within 10 %; two pods behind the
demo's balancer agree with the join-the-shortest-queue chain of ``simulator.queueing`` within
5 %, and their mean queue and p99 lie between one pooled M/M/(2c) and two independent M/M/c.

Why 5 % cannot fail a correct simulator by chance: the figures are estimates from one seeded
run. Over repeated seeds (measured while writing these tests) 400,000 requests gave a standard
deviation of about 1.3 % for the mean queue length, 0.4 % for the probability of waiting and
1 % for the p99 (which is also the adapter's sketch, within 1 %); 600,000 requests bring the
first to about 1 %, so 5 % is several standard deviations away. Service times are 2 ms so that
a run of that many requests is 20 minutes of simulated time (few pushes and syncs).
"""

from __future__ import annotations

import pytest
import yaml

from localcluster import manifests
from model_server import profiles
from model_server.service_time import ServiceTime
from simulator import PodModel, RunResult, SimulationConfig, simulate
from simulator.queueing import JoinShortestQueue, MDc, MMc
from tests.hpa_manifests import hpa_yaml

SERVICE_SECONDS = 0.002
MU = 1 / SERVICE_SECONDS


def pinned(replicas: int) -> manifests.hpa.HorizontalPodAutoscaler:
    """An HPA that can only keep ``replicas`` (its metric never matters)."""
    return manifests.parse_hpa(yaml.safe_load(hpa_yaml(replicas, replicas)))


def run(kind: str, arrival_rate: float, pods: int, slots: int, requests: int) -> RunResult:
    result = simulate(
        pinned(pods),
        SimulationConfig(
            profile=profiles.ConstantProfile(arrival_rate),
            duration_seconds=requests / arrival_rate,
            pod=PodModel(
                service_time=ServiceTime(kind, SERVICE_SECONDS),
                max_concurrency=slots,
                max_queue=10**9,
            ),
            seed=7,
        ),
    )
    assert result.unserved == 0
    assert {row.desired_replicas for row in result.rows} == {pods}
    return result


def measured(result: RunResult) -> tuple[float, float, float]:
    """(mean queue length, probability of waiting, p99 of the time in system)."""
    mean_queue = result.queue_seconds / result.config.duration_seconds
    return mean_queue, result.queued / result.requests, result.latencies.quantile(0.99)


def test_one_pod_with_exponential_service_is_m_m_c() -> None:
    theory = MMc(arrival_rate=0.5 * 2 * MU, mu=MU, slots=2)
    mean_queue, waiting, p99 = measured(run("exponential", theory.arrival_rate, 1, 2, 600_000))
    assert mean_queue == pytest.approx(theory.mean_queue, rel=0.05)
    assert waiting == pytest.approx(theory.wait_probability, rel=0.05)
    assert p99 == pytest.approx(theory.time_in_system_quantile(0.99), rel=0.05)


def test_one_pod_with_constant_service_is_m_d_c() -> None:
    theory = MDc(arrival_rate=0.6 * 2 * MU, service_seconds=SERVICE_SECONDS, slots=2)
    mean_queue, waiting, p99 = measured(run("constant", theory.arrival_rate, 1, 2, 300_000))
    assert mean_queue == pytest.approx(theory.mean_queue, rel=0.10)
    assert waiting == pytest.approx(theory.wait_probability, rel=0.10)
    assert p99 == pytest.approx(theory.time_in_system_quantile(0.99), rel=0.10)
    # and it is not M/M/c: deterministic service queues about half as much
    assert mean_queue < 0.7 * MMc(theory.arrival_rate, MU, 2).mean_queue


def test_pods_behind_the_balancer_join_the_shortest_queue() -> None:
    rate = 0.6 * 2 * 2 * MU
    theory = JoinShortestQueue(arrival_rate=rate, mu=MU, slots=2, pods=2)
    mean_queue, waiting, p99 = measured(run("exponential", rate, 2, 2, 600_000))
    assert mean_queue == pytest.approx(theory.mean_queue, rel=0.05)
    assert waiting == pytest.approx(theory.wait_probability, rel=0.05)
    assert p99 == pytest.approx(theory.time_in_system_quantile(0.99), rel=0.05)
    pooled, independent = MMc(rate, MU, 4), MMc(rate / 2, MU, 2)
    assert pooled.mean_queue < mean_queue < 2 * independent.mean_queue
    assert pooled.time_in_system_quantile(0.99) < p99 < independent.time_in_system_quantile(0.99)
