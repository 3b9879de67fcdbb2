"""``simulator.deployment``, ``simulator.run`` and ``simulator.summary``: the Deployment's life
cycle as the HPA sees it, whole runs, and the figures a run is judged by."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import yaml

from adapter.config import StoreConfig
from adapter.resources import PodRef
from adapter.store import Store
from localcluster import hpa, manifests
from model_server import profiles
from model_server.service_time import ServiceTime
from simulator import PodModel, SimulationConfig, run, simulate
from simulator.deployment import Deployment
from simulator.events import EventQueue
from simulator.outputs import per_sync_counts
from simulator.pods import Tally
from simulator.pushes import Pushes
from simulator.summary import count_flaps, longest_run, summarize
from tests.hpa_manifests import P99_500MS, hpa_yaml

HPA = hpa_yaml(
    1,
    6,
    behavior="""\
    scaleDown:
      stabilizationWindowSeconds: 20
      policies: [{type: Pods, value: 1, periodSeconds: 5}]
""",
)


def autoscaler(text: str = HPA) -> hpa.HorizontalPodAutoscaler:
    return manifests.parse_hpa(yaml.safe_load(text))


def deployment(startup: float = 5.0) -> tuple[Deployment, EventQueue, Store, Pushes]:
    events = EventQueue()
    store = Store(StoreConfig())
    pushes = Pushes(store)
    model = PodModel(
        service_time=ServiceTime("constant", 0.1), startup_delay=ServiceTime("constant", startup)
    )
    target = Deployment(
        "model",
        "ml",
        model,
        events=events,
        pushes=pushes,
        tally=Tally(0.5, 1000),
        push_interval_seconds=1.0,
        rng=np.random.default_rng(1),
        service_rng=np.random.default_rng(2),
    )
    return target, events, store, pushes


def idle(events: EventQueue, until: float) -> None:
    events.run([], lambda t: None, until=until)


def test_scaling_up_pods_start_pending_then_serve_and_push() -> None:
    target, events, store, pushes = deployment(startup=5.0)
    target.start(1)
    pushes.flush()
    first = target.pods[0]
    assert store.get(PodRef("ml", first.name)) is not None, "running pods pushed at time 0"
    assert target.selector == "app=model" and target.ready_count() == 1
    idle(events, 10.0)
    target.scale(3)
    assert target.replicas == 3 and len(target.pods) == 3
    assert [p.phase for p in target.pods] == ["Running", "Pending", "Pending"]
    assert target.ready_count() == 1
    idle(events, 15.0)  # ready at 15, in the Service, pushing within an interval
    assert [p.phase for p in target.pods] == ["Running"] * 3 and target.ready_count() == 3
    assert all(p.ready_since == 15.0 for p in target.pods[1:])
    idle(events, 16.0)
    pushes.flush()
    assert all(store.get(PodRef("ml", p.name)) is not None for p in target.pods)
    assert len({p.name for p in target.pods}) == 3
    assert all(p.name.startswith("model-") and len(p.name) == 22 for p in target.pods)


def test_scaling_down_deletes_as_a_replicaset_and_pushes_a_last_time() -> None:
    target, events, store, pushes = deployment(startup=5.0)
    target.start(1)
    idle(events, 1.0)
    target.scale(2)
    idle(events, 7.0)  # the second pod is ready since 6
    target.scale(4)
    idle(events, 8.0)  # two more are starting
    target.scale(2)  # the two not ready go first
    assert len(target.pods) == 2 and len(target.gone) == 2
    assert all(p.exited == 8.0 for p in target.gone)
    newest = target.pods[1]
    target.scale(1)  # then the most recently ready, which drains and pushes as it exits
    assert target.pods == [target.pods[0]] and newest in target.gone
    assert newest.deleting_since == 8.0 and target.ready_count() == 1
    pushes.flush()
    record = store.get(PodRef("ml", newest.name))
    assert record is not None and record.last_seen == 8.0


def run_config(**changes: object) -> SimulationConfig:
    config = SimulationConfig(
        profile=profiles.PiecewiseProfile((0.0, 20.0, 60.0), (20.0, 160.0, 15.0)),
        duration_seconds=100.0,
        pod=PodModel(
            service_time=ServiceTime("lognormal", 0.05, 0.4),
            max_queue=200,
            startup_delay=ServiceTime("constant", 2.0),
        ),
        store=StoreConfig(window_seconds=10.0),
        controller=hpa.ControllerConfig(sync_period_seconds=3.0),
    )
    return dataclasses.replace(config, **changes)  # type: ignore[arg-type]


def test_a_load_step_scales_up_as_the_hpa_computes_then_back_down() -> None:
    result = simulate(autoscaler(), run_config())
    rows = result.rows
    assert [r.time for r in rows] == pytest.approx([3.0 * i for i in range(34)])
    first_up = next(r for r in rows if r.desired_replicas > r.current_replicas)
    assert 20 < first_up.time <= 26
    # what the HPA read is what it computed from: ceil(current x average / target), then the
    # default scale-up policy (max of +100 % and +4 pods per 15 s)
    average = first_up.metric_values[0]
    assert average is not None
    proposal = int(np.ceil(round(first_up.current_replicas * average / 3, 9)))
    assert first_up.desired_replicas == min(proposal, 6, first_up.current_replicas + 4)
    assert "SuccessfulRescale" in first_up.decision
    assert max(r.desired_replicas for r in rows) >= 3
    assert rows[-1].desired_replicas == 1, "after the step and the window: back to minReplicas"
    assert rows[-1].ready_replicas == 1
    assert all(r.p99_seconds is not None for r in rows[1:])


def test_runs_repeat_and_manifests_see_the_same_traffic() -> None:
    config = run_config()
    one, again = simulate(autoscaler(), config), simulate(autoscaler(), config)
    assert one.rows == again.rows and one.latencies == again.latencies
    pinned = autoscaler(HPA.replace("minReplicas: 1", "minReplicas: 6"))
    other = simulate(pinned, config)
    assert np.array_equal(one.offered_per_second, other.offered_per_second)
    assert {r.desired_replicas for r in other.rows} == {6}
    assert summarize(other).replica_seconds == pytest.approx(600.0)
    reseeded = simulate(autoscaler(), dataclasses.replace(config, seed=2))
    assert not np.array_equal(one.offered_per_second, reseeded.offered_per_second)


def test_summary_figures_of_a_run() -> None:
    result = simulate(autoscaler(), run_config())
    summary = summarize(result)
    counts = per_sync_counts(result)
    assert (
        summary.requests
        == result.requests
        == counts[:, 0].sum() + result.offered_per_second[int(result.rows[-1].time) :].sum()
    )
    missed = result.slow_per_second.sum() + result.unserved_per_second.sum()
    assert summary.slo_violation_share == pytest.approx(missed / result.requests)
    assert summary.replica_seconds == pytest.approx(sum(e - s for s, e in result.lifetimes))
    assert summary.scale_events == sum(
        r.desired_replicas != r.current_replicas for r in result.rows
    )
    assert summary.p99_seconds == result.latencies.quantile(0.99)
    assert summary.max_replicas == max(r.desired_replicas for r in result.rows)
    assert summary.longest_above_slo_seconds > 0  # the step hurt before the pods came


def test_flaps_are_scale_downs_undone_within_the_window() -> None:
    events = [(0.0, 1, 4), (30.0, 4, 3), (40.0, 3, 4), (100.0, 4, 2), (200.0, 2, 3)]
    assert count_flaps(events, window_seconds=20.0) == 1
    assert count_flaps(events, window_seconds=100.0) == 2
    assert count_flaps([(0.0, 4, 3), (5.0, 3, 2)], window_seconds=60.0) == 0


def test_longest_run_of_seconds_above_the_slo() -> None:
    assert longest_run(np.array([0, 1, 1, 0, 1, 1, 1, 0], dtype=bool)) == 3
    assert longest_run(np.zeros(5, dtype=bool)) == 0
    assert longest_run(np.ones(4, dtype=bool)) == 4


def test_a_sync_whose_metrics_all_fail_keeps_the_size_and_is_no_scale_event() -> None:
    """The HPA leaves ``status.desiredReplicas`` as it was when no metric can be read (0 before
    any success); the run's desired replicas are what the Deployment was left with, so such
    syncs are neither scale events nor a size of 0."""
    unmatched = autoscaler(
        HPA.replace(
            "metric: {name: inference_concurrency}",
            "metric: {name: inference_concurrency, selector: {matchLabels: {tier: none}}}",
        )
    )
    result = simulate(unmatched, run_config(duration_seconds=30.0))
    assert all("FailedGetPodsMetric" in row.decision for row in result.rows)
    assert {(row.current_replicas, row.desired_replicas) for row in result.rows} == {(1, 1)}
    summary = summarize(result)
    assert (summary.scale_events, summary.max_replicas, summary.flaps) == (0, 1, 0)


def test_a_metric_selector_the_hpa_cannot_use_fails_that_metric_not_the_run() -> None:
    """An operator metav1 does not know decodes (it is a string) and fails the metric at each
    sync, as in the HPA; the other metric still scales."""
    bad = autoscaler(
        HPA.replace(
            "metric: {name: inference_concurrency}",
            "metric: {name: inference_concurrency, selector: {matchExpressions:"
            " [{key: tier, operator: Equals, values: [gpu]}]}}",
        ).replace("  behavior:", P99_500MS + "  behavior:")
    )
    result = simulate(bad, run_config())
    assert all('"Equals" is not a valid label selector operator' in r.decision for r in result.rows)
    assert max(r.desired_replicas for r in result.rows) > 1, "the p99 metric still scales"


def test_arrivals_are_drawn_in_blocks_of_bounded_size_whatever_the_rate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Memory per block is its candidate arrivals (peak rate x span): a minute at a million
    requests/s would be 60 million floats and a list of them, so blocks shorten as the rate
    grows."""
    asked: list[float] = []

    def no_arrivals(profile: profiles.RateProfile, seconds: float, rng: object) -> np.ndarray:
        asked.append(profile.max_rate * seconds)
        return np.empty(0)

    monkeypatch.setattr(profiles, "arrival_times", no_arrivals)
    simulate(autoscaler(), run_config(profile=profiles.ConstantProfile(1e6), duration_seconds=2.0))
    assert sum(asked) == pytest.approx(2e6)
    assert max(asked) <= run.MAX_BLOCK_ARRIVALS * (1 + 1e-9)  # float sums of the spans
