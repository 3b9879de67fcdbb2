"""The closed loop with short windows: a load step scales real model processes up as the HPA
algorithm predicts, the p99 falls back under target, and after the stabilization window the
Deployment scales back down; the what-if simulator, given the same trace, manifest and pods,
takes the same steps. Also the supervisor on its own."""

from __future__ import annotations

import asyncio
import math
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapter.config import StoreConfig
from adapter.durations import parse_duration
from localcluster import hpa, manifests
from localcluster.closedloop import ClosedLoop, LoopConfig, LoopResult
from localcluster.controller import SyncRecord
from localcluster.demo import summarize, write_timeline_csv, write_trace
from localcluster.supervisor import Deployment, DeploymentSpec
from model_server import profiles
from model_server.service_time import ServiceTime, parse_distribution
from simulator import PodModel, SimulationConfig, simulate

pytestmark = pytest.mark.integration

POD_NAME = re.compile(r"model-[bcdfghjklmnpqrstvwxz2456789]{10}-[bcdfghjklmnpqrstvwxz2456789]{5}")


async def until(condition: Callable[[], bool], timeout_seconds: float = 30) -> None:
    """Poll ``condition`` (state changes in a supervisor task); fail after the timeout."""
    deadline = time.monotonic() + timeout_seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_supervisor_scales_up_and_down_gracefully(tmp_path: Path) -> None:
    spec = DeploymentSpec(name="model", server_args=("--model-name=m", "--model-size-mb=1"))
    async with Deployment(spec, tmp_path / "pods") as deployment:
        deployment.scale(1)
        first = deployment.pods[0]
        await until(lambda: deployment.ready_count() == 1)
        assert first.phase == "Running" and first.ready
        deployment.scale(3)
        assert len(deployment.pods) == 3, "scaling up must not terminate anything"
        assert all(p.deleting_since is None for p in deployment.pods)
        await until(lambda: deployment.ready_count() == 3)
        assert all(POD_NAME.fullmatch(p.name) for p in deployment.pods)
        assert len({p.name.rsplit("-", 1)[0] for p in deployment.pods}) == 1  # one template hash
        deployment.scale(1)
        # The most recently ready pods go first; the oldest survives.
        assert [p for p in deployment.pods if p.deleting_since is None] == [first]
        victims = [p for p in deployment.pods if p.deleting_since is not None]
        assert all(not p.serving for p in victims)
        codes = [await asyncio.to_thread(p.process.wait, 15) for p in victims]
        assert codes == [0, 0], "terminated pods must drain and exit cleanly"
        await until(lambda: deployment.pods == [first])
    assert first.process.poll() is not None, "leaving the context stops every pod"


TEST_HPA = """
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: model, namespace: inference}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: model}
  minReplicas: 1
  maxReplicas: 8
  metrics:
    - type: Pods
      pods:
        metric: {name: inference_concurrency}
        target: {type: AverageValue, averageValue: "3"}
    - type: Pods
      pods:
        metric: {name: inference_queue_depth}
        target: {type: AverageValue, averageValue: "4"}
  behavior:
    scaleUp:
      stabilizationWindowSeconds: 0
      policies:
        - {type: Percent, value: 100, periodSeconds: 15}
        - {type: Pods, value: 4, periodSeconds: 15}
    scaleDown:
      stabilizationWindowSeconds: 9
      policies: [{type: Percent, value: 100, periodSeconds: 15}]
"""
"""The demo's metrics with windows short enough for a test: scale down after 9 s."""


def predicted_replicas(record: SyncRecord) -> int:
    """What the algorithm predicts from the measured per-pod averages: for each metric the
    pods times average over target, rounded up; the largest wins, within the scale-up policy
    (max of 100 % and 4 pods per 15 s) and maxReplicas."""
    current = record.current_replicas
    proposals = []
    for status, target in zip(record.metrics, (3000, 4000), strict=True):
        assert status is not None and status.current.average_value_milli is not None
        proposals.append(math.ceil(current * status.current.average_value_milli / target))
    return min(max(proposals), max(2 * current, current + 4), 8)


TRACE = ((0.0, 20.0), (8.0, 160.0), (38.0, 15.0))
RUN_SECONDS = 70.0


@dataclass(frozen=True)
class StepRun:
    """One real closed-loop run of a load step under ``TEST_HPA``."""

    config: LoopConfig
    result: LoopResult
    work_dir: Path


@pytest.fixture(scope="module")
def step_run(tmp_path_factory: pytest.TempPathFactory) -> StepRun:
    """The real run, made once and shared by the tests below (it takes RUN_SECONDS)."""
    work = tmp_path_factory.mktemp("closed-loop")
    write_trace(work / "load.csv", TRACE)
    manifest = work / "hpa.yaml"
    manifest.write_text(TEST_HPA)
    config = LoopConfig(
        hpa_manifest=manifest,
        work_dir=work,
        sync_period_seconds=3.0,
        model_size_mb=16,
        window="10s",
    )

    async def run() -> LoopResult:
        async with ClosedLoop(config) as loop:
            return await loop.run(work / "load.csv", RUN_SECONDS)

    return StepRun(config, asyncio.run(run()), work)


def test_load_step_scales_up_as_predicted_then_back_down(step_run: StepRun) -> None:
    result, trace = step_run.result, TRACE
    write_timeline_csv(step_run.work_dir / "timeline.csv", result, trace)
    syncs = result.syncs
    assert all(not r.events or r.events[0].reason != "FailedGetPodsMetric" for r in syncs)
    ups = [r for r in syncs if r.desired_replicas > r.current_replicas]
    assert ups, "the load step must cause a scale-up"
    first_up = ups[0]
    assert first_up.desired_replicas == predicted_replicas(first_up)
    assert any(e.reason == "SuccessfulRescale" for e in first_up.events)
    peak = max(s.live_replicas for s in result.samples)
    assert peak >= first_up.desired_replicas, "the supervisor must start the processes"

    step_end = result.started + 38
    during_step = [s for s in result.samples if s.time < step_end and s.p99_seconds is not None]
    assert max(s.p99_seconds for s in during_step) > 0.3, "the step must have hurt first"
    # Once scaled up, the p99 (over the adapter's 10 s window) falls back under 0.3 s.
    assert during_step[-1].p99_seconds < 0.3, during_step[-1]
    # ... and the Deployment holds its size under the sustained load (no flapping).
    steady = [r for r in syncs if step_end - 12 < r.time < step_end]
    assert steady and min(r.desired_replicas for r in steady) >= 2

    final = syncs[-1]
    assert final.desired_replicas < peak, "after the window the Deployment scales back down"
    assert result.samples[-1].live_replicas == final.desired_replicas
    assert any(c.type == hpa.ABLE_TO_SCALE for c in final.conditions)

    summary = summarize(result, trace)
    assert summary.recovery_seconds is not None
    assert summary.replica_seconds > 70  # at least one replica all along
    assert (step_run.work_dir / "timeline.csv").read_text().count("\n") == len(syncs) + 1


def startup_seconds(result: LoopResult) -> float:
    """How long the real pods took from a scale-up to ready (median over the scale-ups), as an
    operator would measure their pods for the simulator's ``--startup-delay``."""
    delays = []
    for record in result.syncs:
        if record.desired_replicas > record.current_replicas:
            ready = next(
                (
                    s.time
                    for s in result.samples
                    if s.time >= record.time and s.ready_replicas >= record.desired_replicas
                ),
                None,
            )
            if ready is not None:
                delays.append(ready - record.time)
    return max(0.5, statistics.median(delays)) if delays else 2.0


Steps = list[tuple[float, int, int]]
"""(time since the start, current, desired) of each HPA sync."""


def unmatched_scale_ups(steps: Steps, other: Steps, period: float) -> list[tuple[float, int]]:
    """The scale-ups (time, size) of ``steps`` that ``other`` does not take within one sync
    period: at no sync within ``period`` of it does ``other`` want at least that size. (A step
    to 5 matched by steps to 4 then 5 a sync later is the same step within one period.)"""
    return [
        (time, desired)
        for time, current, desired in steps
        if desired > current
        and not any(abs(t - time) <= period and d >= desired for t, _, d in other)
    ]


def test_the_simulator_agrees_with_the_real_loop(step_run: StepRun) -> None:
    """The same trace, manifest, pods (their startup time as measured in the real run),
    windows and sync period in virtual time: the same scale-up steps, each within one sync
    period of the other run's, and the same final count.

    The real loop runs 160 requests/s through Python processes on two cores: on a machine busy
    with other work its pods serve slower than their nominal service time once the step comes,
    and at the steady state (where the HPA holds concurrency at its target) it then takes steps
    the simulator, given nominal times, does not. Rerun on a quieter machine before chasing."""
    config, real = step_run.config, step_run.result
    simulated = simulate(
        manifests.load_hpa(config.hpa_manifest),
        SimulationConfig(
            profile=profiles.PiecewiseProfile(*map(tuple, zip(*TRACE, strict=True))),
            duration_seconds=RUN_SECONDS,
            pod=PodModel(
                service_time=parse_distribution(config.service_time),
                max_concurrency=config.max_concurrency,
                max_queue=config.max_queue,
                startup_delay=ServiceTime("constant", startup_seconds(real)),
            ),
            store=StoreConfig(window_seconds=parse_duration(config.window)),
            push_interval_seconds=parse_duration(config.push_interval),
            controller=hpa.ControllerConfig(sync_period_seconds=config.sync_period_seconds),
            initial_replicas=config.initial_replicas,
            slo_seconds=config.slo_seconds,
        ),
    )
    real_steps = [
        (r.time - real.started, r.current_replicas, r.desired_replicas) for r in real.syncs
    ]
    simulated_steps = [(r.time, r.current_replicas, r.desired_replicas) for r in simulated.rows]
    period = config.sync_period_seconds + 0.5  # a real sync starts a little late
    assert any(d > c for _, c, d in real_steps), "the real loop must scale up"
    assert unmatched_scale_ups(real_steps, simulated_steps, period) == [], simulated_steps
    assert unmatched_scale_ups(simulated_steps, real_steps, period) == [], real_steps
    assert simulated.rows[-1].desired_replicas == real.syncs[-1].desired_replicas
