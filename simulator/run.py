"""One simulated run: a load profile through a Deployment under one HPA, in virtual time.

``simulate(autoscaler, config)`` wires the pieces and runs them to ``config.duration_seconds``:

- arrivals: the load generator's own Poisson process (``model_server.profiles.arrival_times``,
  drawn a minute at a time so that a day needs no more memory than an hour);
- the Deployment's pods and their Service (``simulator.deployment``, ``simulator.pods``);
- the pods' pushes into the adapter's ``Store`` (``simulator.pushes``), read through the
  adapter's ``StoreProvider``;
- the HPA: ``localcluster.controller.HpaController`` (and so ``localcluster.hpa.reconcile``)
  every ``--sync-period`` from time 0, reading the provider in process
  (``simulator.metrics``), with the adapter's sweep of silent pods at each sync.

Every manifest run with the same config sees the same arrivals (their random stream is its own),
so runs compare like for like. The result holds one ``SyncRow`` per sync and per-second counts;
``simulator.summary`` turns it into the figures a run is judged by.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from adapter import errors, resources, selectors, sketch
from adapter.config import StoreConfig
from adapter.provider import CustomMetricInfo
from adapter.store import Store
from adapter.store_provider import StoreProvider
from localcluster import hpa
from localcluster.controller import HpaController, SyncRecord
from model_server import profiles
from simulator.deployment import Deployment
from simulator.events import EventQueue
from simulator.metrics import ProviderMetrics, complete
from simulator.pods import PodModel, Tally
from simulator.pushes import Pushes

ARRIVAL_BLOCK_SECONDS = 60.0
"""Arrivals are drawn and dispatched this many simulated seconds at a time..."""
MAX_BLOCK_ARRIVALS = 200_000
"""... or fewer, so that a block's candidate arrivals (peak rate x span) stay this many: its
memory is theirs, whatever the rate (a minute up to 3,333 requests/s)."""


@dataclass(frozen=True)
class SimulationConfig:
    """Everything a run needs besides the HPA; the defaults are the flags' defaults."""

    profile: profiles.RateProfile
    """Offered requests per second against time (``--profile``, ``--rate``)."""
    duration_seconds: float
    pod: PodModel = field(default_factory=PodModel)
    store: StoreConfig = field(default_factory=StoreConfig)
    """The adapter's ``--window`` and ``--max-age``."""
    push_interval_seconds: float = 1.0
    controller: hpa.ControllerConfig = field(default_factory=hpa.ControllerConfig)
    """kube-controller-manager's HPA flags, ``sync_period_seconds`` included."""
    initial_replicas: int | None = None
    """Replicas running at time 0; None: the HPA's ``minReplicas``."""
    slo_seconds: float = 0.5
    seed: int = 1


@dataclass(frozen=True)
class SyncRow:
    """One HPA sync: what it read and decided, and the fleet at that moment."""

    time: float
    current_replicas: int
    desired_replicas: int
    """``spec.replicas`` as the sync left it: the HPA's new size, or ``current_replicas`` when it
    did not rescale (its ``status.desiredReplicas`` keeps a stale value, 0 before its first
    success, when no metric could be read)."""
    ready_replicas: int
    metric_values: tuple[float | None, ...]
    """Each spec metric's value as the HPA read it, in base units (per pod for Pods metrics and
    AverageValue targets); None where the metric failed."""
    queue_depth: float | None
    """The Deployment's queue depth as the adapter serves it (the pods' pushed gauges, summed)."""
    p99_seconds: float | None
    """The Deployment's pooled p99 over the adapter's window."""
    decision: str


@dataclass
class RunResult:
    """What one run produced."""

    autoscaler: hpa.HorizontalPodAutoscaler
    config: SimulationConfig
    rows: list[SyncRow]
    offered_per_second: npt.NDArray[np.int64]
    """Requests arriving in each second of the run."""
    slow_per_second: npt.NDArray[np.int64]
    """Of those, answered slower than the SLO."""
    unserved_per_second: npt.NDArray[np.int64]
    """Of those, shed by a pod, refused for want of a ready pod, or cut at a drain timeout."""
    latencies: sketch.LatencySketch
    """Every answered request's latency."""
    lifetimes: list[tuple[float, float]]
    """(created, gone or end of run) of every pod."""
    queued: int
    """Requests that waited for a worker slot."""
    queue_seconds: float
    """The summed queue depth integrated over the run (request-seconds of waiting)."""

    @property
    def requests(self) -> int:
        return int(self.offered_per_second.sum())

    @property
    def unserved(self) -> int:
        return int(self.unserved_per_second.sum())


@dataclass(frozen=True)
class _Shifted:
    """``base`` as seen from ``offset`` seconds on (to draw arrivals a block at a time)."""

    base: profiles.RateProfile
    offset: float

    @property
    def max_rate(self) -> float:
        return self.base.max_rate

    def rate_at(self, t_seconds: float) -> float:
        return self.base.rate_at(t_seconds + self.offset)

    def rates_at(self, t_seconds: profiles.FloatArray) -> profiles.FloatArray:
        return self.base.rates_at(np.asarray(t_seconds) + self.offset)


def _metric_value(status: hpa.MetricStatus | None) -> float | None:
    """A ``currentMetrics`` entry in base units."""
    if status is None:
        return None
    current = status.current
    if current.average_value_milli is not None:
        return current.average_value_milli / 1000
    if current.value_milli is not None:
        return current.value_milli / 1000
    if current.average_utilization is not None:
        return float(current.average_utilization)
    return None


class _Run:
    """The pieces of one run and the handlers that connect them."""

    def __init__(self, autoscaler: hpa.HorizontalPodAutoscaler, config: SimulationConfig) -> None:
        self.autoscaler = autoscaler
        self.config = config
        arrivals_seed, service_seed, pods_seed = np.random.SeedSequence(config.seed).spawn(3)
        self.arrivals_rng = np.random.default_rng(arrivals_seed)
        self.events = EventQueue()
        self.seconds = math.ceil(config.duration_seconds)
        self.tally = Tally(config.slo_seconds, self.seconds)
        self.offered = np.zeros(self.seconds + 1, dtype=np.int64)
        self.store = Store(config.store)
        self.pushes = Pushes(self.store)
        self.provider = StoreProvider(self.store, clock=lambda: self.events.now)
        target = autoscaler.scale_target_ref
        self.deployment = Deployment(
            target.name if target is not None else autoscaler.name,
            autoscaler.namespace,
            config.pod,
            events=self.events,
            pushes=self.pushes,
            tally=self.tally,
            push_interval_seconds=config.push_interval_seconds,
            rng=np.random.default_rng(pods_seed),
            service_rng=np.random.default_rng(service_seed),
        )
        self.controller = HpaController(
            autoscaler,
            self.deployment,
            ProviderMetrics(self.provider),
            config.controller,
            clock=lambda: self.events.now,
        )
        self.rows: list[SyncRow] = []

    def _object_value(self, metric: str) -> float | None:
        """The Deployment's value of ``metric`` as the adapter serves it, None without data."""
        info = CustomMetricInfo(resources.DEPLOYMENTS.group_resource, True, metric)
        try:
            value = complete(
                self.provider.get_metric_by_name(
                    info, self.deployment.namespace, self.deployment.name, selectors.EVERYTHING
                )
            )
        except errors.ApiError:
            return None
        return value.value

    def _sync(self, now: float, _: object) -> None:
        self.pushes.flush()
        self.store.sweep(now)
        record: SyncRecord = complete(self.controller.sync())
        self.rows.append(
            SyncRow(
                time=now,
                current_replicas=record.current_replicas,
                desired_replicas=self.deployment.replicas,
                ready_replicas=self.deployment.ready_count(),
                metric_values=tuple(_metric_value(m) for m in record.metrics),
                queue_depth=self._object_value("inference_queue_depth"),
                p99_seconds=self._object_value("inference_latency_p99_seconds"),
                decision=record.reason(),
            )
        )
        following = now + self.config.controller.sync_period_seconds
        if following <= self.config.duration_seconds:
            self.events.schedule(following, self._sync)

    def run(self) -> RunResult:
        config = self.config
        spec = hpa.set_defaults_horizontal_pod_autoscaler(self.autoscaler.spec)
        initial = config.initial_replicas
        self.deployment.start(initial if initial is not None else spec.min_replicas or 1)
        self.events.schedule(0.0, self._sync)
        dispatch = self.deployment.service.dispatch
        peak = config.profile.max_rate
        block_seconds = min(ARRIVAL_BLOCK_SECONDS, MAX_BLOCK_ARRIVALS / peak if peak > 0 else 1e9)
        start = 0.0
        while start < config.duration_seconds:
            end = min(start + block_seconds, config.duration_seconds)
            block = start + profiles.arrival_times(
                _Shifted(config.profile, start), end - start, self.arrivals_rng
            )
            per_second = np.bincount(block.astype(np.int64) - int(start))
            self.offered[int(start) : int(start) + per_second.size] += per_second
            self.events.run(block.tolist(), dispatch, until=end)
            start = end
        return self._result()

    def _result(self) -> RunResult:
        end = self.config.duration_seconds
        deployment = self.deployment
        self.pushes.flush()
        for pod in deployment.pods:
            pod.take_mean_gauges(end)  # closes its integrals at the end of the run
        everyone = [*deployment.gone, *deployment.pods]
        lifetimes = [(p.created, min(end, p.exited if p.exited is not None else end))
                     for p in everyone]  # fmt: skip
        return RunResult(
            autoscaler=self.autoscaler,
            config=self.config,
            rows=self.rows,
            offered_per_second=self.offered,
            slow_per_second=np.asarray(self.tally.slow_per_second, dtype=np.int64),
            unserved_per_second=np.asarray(self.tally.unserved_per_second, dtype=np.int64),
            latencies=self.pushes.latencies(),
            lifetimes=lifetimes,
            queued=sum(p.queued for p in everyone),
            queue_seconds=sum(p.queue_seconds for p in everyone),
        )


def simulate(autoscaler: hpa.HorizontalPodAutoscaler, config: SimulationConfig) -> RunResult:
    """Run ``config``'s load through a Deployment scaled by ``autoscaler``; pure but for time."""
    return _Run(autoscaler, config).run()
