"""A Deployment of simulated pods: what ``localcluster.supervisor`` does with processes, in
virtual time.

``scale(n)`` creates pods (``Pending`` for a startup delay drawn from ``PodModel``, then ready,
in the Service's endpoints and pushing every interval) or deletes the surplus, ranked as a
ReplicaSet ranks them (``localcluster.supervisor.victims``: not ready first, then the most
recently ready); a deleted pod leaves the endpoints at once, drains and pushes one last time as
it exits. It satisfies ``localcluster.controller.ScaleTarget``, so the HPA controller that
drives the closed loop drives this Deployment too.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import numpy as np

from localcluster import supervisor
from simulator.events import EventQueue
from simulator.pods import Pod, PodModel, Service, Tally, service_times
from simulator.pushes import PodPusher, Pushes

_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
"""The characters Kubernetes uses for generated name suffixes."""


class Deployment:
    """The pods of one Deployment, their Service, and their pushes to the adapter's store.

    ``service_rng`` draws the service times alone (``rng`` the rest: startup delays, names,
    push phases), so that runs under different HPAs draw the same service times in the same
    order.
    """

    def __init__(
        self,
        name: str,
        namespace: str,
        model: PodModel,
        *,
        events: EventQueue,
        pushes: Pushes,
        tally: Tally,
        push_interval_seconds: float,
        rng: np.random.Generator,
        service_rng: np.random.Generator,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.namespace = namespace
        self.labels = dict(labels or {"app": name})
        self.model = model
        self.replicas = 0
        """``spec.replicas``."""
        self.pods: list[Pod] = []
        """Pods not gone yet, oldest first (pending, ready and terminating)."""
        self.service = Service(tally)
        self.gone: list[Pod] = []
        """Every pod that exited, in order."""
        self._events = events
        self._pushes = pushes
        self._tally = tally
        self._interval = push_interval_seconds
        self._rng = rng
        self._draws = service_times(model.service_time, service_rng)
        self._template_hash = "".join(rng.choice(list(_NAME_ALPHABET), 10))
        self._uids = itertools.count(1)
        self._pushers: dict[Pod, PodPusher] = {}

    # -- what the HPA controller reads (localcluster.controller.ScaleTarget) -------------------

    @property
    def selector(self) -> str:
        """The label selector of its pods, as the scale subresource reports it."""
        return ",".join(f"{k}={v}" for k, v in sorted(self.labels.items()))

    @property
    def cpu_request_milli(self) -> int | None:
        """Not simulated: an HPA on CPU is refused before a run."""
        return None

    def ready_count(self) -> int:
        return len(self.service.endpoints)

    def scale(self, replicas: int) -> None:
        """Set ``spec.replicas``: create pods, or delete the surplus gracefully."""
        now = self._events.now
        self.replicas = replicas
        active = [p for p in self.pods if p.deleting_since is None]
        for _ in range(replicas - len(active)):
            self._create(now, startup=float(self.model.startup_delay.sample(self._rng)))
        deleted = supervisor.victims(self.pods, max(0, len(active) - replicas))
        for pod in deleted:
            pod.terminate(now)
        if any(p.endpoint_index >= 0 for p in deleted):
            self._update_endpoints()

    # -- life cycle ----------------------------------------------------------------------------

    def start(self, replicas: int) -> None:
        """At time 0: ``replicas`` pods already running, each having pushed once (the closed
        loop starts its clock once the adapter serves the pods' data, too)."""
        self.replicas = replicas
        for _ in range(replicas):
            pod = self._create(0.0, startup=0.0)
            self._pushes.take(0.0, self._pushers[pod])

    def _create(self, now: float, startup: float) -> Pod:
        uid = next(self._uids)
        suffix = "".join(self._rng.choice(list(_NAME_ALPHABET), 5))
        pod = Pod(
            f"{self.name}-{self._template_hash}-{suffix}",
            f"00000000-0000-4000-8000-{uid:012d}",
            now,
            self.model,
            self._events,
            self._draws,
            self._tally,
        )
        pod.on_exit = self._gone
        self.pods.append(pod)
        if startup <= 0:
            self._ready(now, pod)
        else:
            self._events.schedule(now + startup, self._ready, pod)
        return pod

    def _ready(self, now: float, pod: Pod) -> None:
        if pod.exited is not None:
            return  # deleted while starting
        pod.become_ready(now)
        self._update_endpoints()
        pusher = PodPusher(pod, self.namespace, self.labels, self.name)
        self._pushers[pod] = pusher
        # The pod's push loop started with its process, at a phase of its own.
        first = now + self._interval * float(self._rng.uniform(0.0, 1.0))
        self._events.schedule(first, self._push, pusher)

    def _push(self, now: float, pusher: PodPusher) -> None:
        if pusher.pod.exited is None:
            self._pushes.take(now, pusher)
            self._events.schedule(now + self._interval, self._push, pusher)

    def _gone(self, pod: Pod, now: float) -> None:
        """A pod exited: its last push (if it ever served), and out of the list."""
        pusher = self._pushers.pop(pod, None)
        if pusher is not None:
            self._pushes.take(now, pusher)
        self.pods.remove(pod)
        self.gone.append(pod)

    def _update_endpoints(self) -> None:
        self.service.set_endpoints([p for p in self.pods if p.serving])
