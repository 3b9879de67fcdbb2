"""The HPA controller loop: fetch over HTTPS, compute with ``localcluster.hpa``, scale the target.

Every sync period (default 15 s) ``HpaController.sync`` does what kube-controller-manager does for
one HPA: read the target's scale and pods (from the supervisor's Deployment), discover the custom
metrics API version, fetch each metric of the defaulted spec (``MetricsClient``), run one
``reconcile`` pass, apply the returned replica count and keep the returned status and state for
the next pass. The loop and the math never share a function: this module is the I/O around
``hpa.reconcile``.

What it scales and where it reads metrics are seams (``ScaleTarget``, ``MetricsSource``): the
closed loop passes the supervisor's Deployment and the HTTPS ``MetricsClient``; the what-if
simulator (``simulator``) passes its simulated Deployment and the adapter's provider in process,
and drives ``sync`` in virtual time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from localcluster import hpa
from localcluster import replica_calculator as rc
from localcluster.metrics_client import ApiFailure, fetch_error

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncRecord:
    """What one pass saw and decided: a row of the demo's timeline."""

    time: float
    current_replicas: int
    ready_replicas: int
    desired_replicas: int
    metrics: tuple[hpa.MetricStatus | None, ...]
    conditions: tuple[hpa.Condition, ...]
    events: tuple[hpa.Event, ...]

    def reason(self) -> str:
        """Why the HPA decided what it did, in the words of its conditions and events."""
        if self.events:
            return "; ".join(f"{e.reason}: {e.message}" for e in self.events)
        for condition in self.conditions:
            if condition.type == hpa.SCALING_LIMITED and condition.status == hpa.TRUE:
                return f"{condition.reason}: {condition.message}"
        for condition in self.conditions:
            if condition.type == hpa.ABLE_TO_SCALE:
                return f"{condition.reason}: {condition.message}"
        return ""


class HpaPod(Protocol):
    """What the HPA's pod lister reads of a pod (times on the controller's clock)."""

    name: str
    created: float
    ready: bool
    ready_since: float | None
    """When readiness last changed (the Ready condition's lastTransitionTime)."""
    deleting_since: float | None

    @property
    def phase(self) -> str: ...


class ScaleTarget(Protocol):
    """The workload an HPA scales: its scale subresource, pods and selector."""

    replicas: int
    """``spec.replicas``."""

    @property
    def pods(self) -> Sequence[HpaPod]: ...

    @property
    def selector(self) -> str: ...

    @property
    def cpu_request_milli(self) -> int | None: ...

    def ready_count(self) -> int: ...

    def scale(self, replicas: int) -> None: ...


class MetricsSource(Protocol):
    """The metrics APIs as the HPA's clients see them (``MetricsClient`` over HTTPS)."""

    async def discover(self) -> str: ...

    async def observe(
        self, namespace: str, spec: hpa.MetricSpec, pod_selector: str
    ) -> hpa.Observation: ...


def pods_for_hpa(deployment: ScaleTarget) -> list[rc.Pod]:
    """The Deployment's pods as the HPA's pod lister sees them."""
    return [
        rc.Pod(
            name=pod.name,
            phase=pod.phase,
            ready=pod.ready,
            ready_transition_time=pod.ready_since if pod.ready_since is not None else pod.created,
            start_time=pod.created,
            deletion_timestamp=pod.deleting_since,
            cpu_request_milli=deployment.cpu_request_milli,
        )
        for pod in deployment.pods
        if pod.phase in ("Pending", "Running")
    ]


class HpaController:
    """Runs one HPA against one Deployment."""

    def __init__(
        self,
        autoscaler: hpa.HorizontalPodAutoscaler,
        deployment: ScaleTarget,
        client: MetricsSource,
        config: hpa.ControllerConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.autoscaler = autoscaler
        self.deployment = deployment
        self.client = client
        self.config = config or hpa.ControllerConfig()
        self.clock = clock
        self.state = hpa.HpaState()
        self.metric_specs = hpa.set_defaults_horizontal_pod_autoscaler(autoscaler.spec).metrics

    async def _observations(self, selector: str) -> list[hpa.Observation]:
        try:
            await self.client.discover()
            discovery_error = None
        except ApiFailure as failure:
            discovery_error = fetch_error("custom metrics API", failure)
        observations: list[hpa.Observation] = []
        for spec in self.metric_specs:
            if discovery_error is not None and spec.type in (hpa.PODS, hpa.OBJECT):
                observations.append(discovery_error)
            else:
                observations.append(
                    await self.client.observe(self.autoscaler.namespace, spec, selector)
                )
        return observations

    async def sync(self) -> SyncRecord:
        """One reconcile pass; scales the Deployment when the HPA says so."""
        deployment = self.deployment
        pods = pods_for_hpa(deployment)
        scale = hpa.Scale(
            spec_replicas=deployment.replicas,
            status_replicas=sum(1 for p in pods if p.deletion_timestamp is None),
            selector=deployment.selector,
        )
        observations = await self._observations(deployment.selector)
        now = self.clock()
        result = hpa.reconcile(
            self.autoscaler, scale, pods, observations, self.state, now=now, config=self.config
        )
        if result.rescale:
            deployment.scale(result.status.desired_replicas)
        self.state = result.state
        self.autoscaler = replace(self.autoscaler, status=result.status)
        for event in result.events:
            log = logger.warning if event.type == hpa.WARNING else logger.info
            log("HPA %s: %s %s", self.autoscaler.name, event.reason, event.message)
        return SyncRecord(
            time=now,
            current_replicas=scale.spec_replicas,
            ready_replicas=deployment.ready_count(),
            desired_replicas=result.status.desired_replicas,
            metrics=result.status.current_metrics,
            conditions=result.status.conditions,
            events=result.events,
        )

    async def run(self, on_sync: Callable[[SyncRecord], None] = lambda record: None) -> None:
        """Sync every ``config.sync_period_seconds`` until cancelled."""
        while True:
            started = time.monotonic()
            on_sync(await self.sync())
            elapsed = time.monotonic() - started
            await asyncio.sleep(max(0.0, self.config.sync_period_seconds - elapsed))
