"""``inference_required_replicas``: what a workload's pods report, put to the queueing model.

For the fresh pods of one workload (a Deployment, a Service's pods, an external series) the
provider hands over each pod's ``rates.Change`` over the rate window and its
``inference_worker_slots`` gauge, and the pods' ``service_time`` sketches merged over the
window. ``size`` turns them into the inputs of ``adapter.queueing.required_replicas``:

- the offered arrival rate: the sum over pods of what arrived at each (completed, shed, and the
  growth of what it holds) over its span of the rate window (``rates.Change.arrived``);
- the service-time distribution: the merged sketch (each bin's value, weighted by its count);
- the slots per pod: the smallest any ready pod reports, so the answer errs high;
- the ready pods: those reporting at least one slot (a pod loading its model reports none);
- queue growth: the pods' queue depths together grew by more than
  ``QUEUE_GROWTH_PER_READY_POD`` requests per ready pod over the rate window. A raw positive
  slope would be noise (the gauges are means over a push interval of a random queue), and a
  guard that fires on noise holds the count for the HPA's whole scale-down stabilization
  window; a queue that grows by a request per pod and more is falling behind.

Pure: no store, no clock. ``queueing.MissingInput`` (a pod field nobody sent) and
``ValueError`` (a load beyond the model) pass through for the provider to answer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from adapter import queueing, rates, sketch
from adapter.report import WORKER_SLOTS
from adapter.slo import Slo

QUEUE_GROWTH_PER_READY_POD = 1.0
"""Queue growth over the rate window, per ready pod, above which the queue counts as growing."""


class PodState(NamedTuple):
    """What one fresh pod tells the model."""

    change: rates.Change | None
    """Its counts over the rate window (None: nothing within it)."""
    slots: float | None
    """Its ``inference_worker_slots`` gauge (None: not reported)."""


@dataclass(frozen=True)
class Sizing:
    """An estimate and the inputs it was made from (for messages, logs and timelines)."""

    estimate: queueing.ReplicaEstimate
    arrival_rate: float
    """Offered requests per second."""
    slots_per_pod: int
    ready_pods: int
    queue_growing: bool
    mean_service_seconds: float | None
    """None when no service time was reported (nothing arrived)."""


def size(pods: Sequence[PodState], service: sketch.LatencySketch, slo: Slo) -> Sizing:
    """The replica count that meets ``slo`` for the load ``pods`` report.

    Raises ``queueing.MissingInput`` naming ``inference_worker_slots`` when no pod reports
    slots (or every one reports 0: none is ready), or ``service_time`` when requests arrive but
    no service time was reported; ``ValueError`` for a load beyond ``queueing.MAX_OFFERED_LOAD``.
    """
    reported = [p.slots for p in pods if p.slots is not None]
    ready = [s for s in reported if s >= 1]
    if not ready:
        why = (
            f"no pod reports worker slots (gauge {WORKER_SLOTS})"
            if not reported
            else f"no pod is ready: each reports 0 worker slots (gauge {WORKER_SLOTS})"
        )
        raise queueing.MissingInput(WORKER_SLOTS, why)
    slots = math.floor(min(ready))
    changes = [p.change for p in pods if p.change is not None]
    arrival_rate = sum(c.arrived / c.seconds for c in changes)
    queue_growing = sum(c.queue_growth for c in changes) > QUEUE_GROWTH_PER_READY_POD * len(ready)
    distribution = queueing.ServiceTime.from_sketch(service)
    estimate = queueing.required_replicas(
        arrival_rate=arrival_rate,
        service=distribution,
        slots_per_pod=slots,
        ready_pods=len(ready),
        slo_seconds=slo.seconds,
        quantile=slo.quantile,
        queue_growing=queue_growing,
    )
    return Sizing(
        estimate,
        arrival_rate,
        slots,
        len(ready),
        queue_growing,
        distribution.mean_seconds if distribution is not None else None,
    )
