"""``inference_required_replicas``: what a workload's pods report, put to the queueing model.

For the fresh pods of one workload (a Deployment, a Service's pods, an external series) the
provider hands over each pod's ``rates.Change`` over the rate window and over its most recent
quarter, its ``inference_worker_slots`` gauge, and the pods' ``service_time`` sketches merged
over the window. ``size`` turns them into the inputs of ``adapter.queueing.required_replicas``:

- the offered arrival rate: what arrived at the pods (completed, shed, and the growth of what
  they hold: ``rates.Change.arrived``) over the rate window; or over its most recent quarter
  when that is higher by more than ``RISE_STANDARD_ERRORS`` standard errors of its count (a
  rate that steps up shows there within a push or two, and would take half the window to show
  in the mean), plus the requests waiting now, drained over the rate window;
- a lead (``Slo.lead_seconds``, asked for with ``lead=20s``): when the rate over the rate window
  is above the rate over the trend window (the latency window) by more than
  ``RISE_STANDARD_ERRORS`` standard errors of that difference, the rise is taken as a straight
  line through the two means and carried on to ``lead`` seconds from now, so that the count is
  the one a pod started now will be needed for once it serves; a falling or flat rate is never
  carried on (falling is the scale-down stabilization's business);
- the service-time distribution: the merged sketch (each bin's value, weighted by its count);
- the slots per pod: the smallest any ready pod reports, so the answer errs high;
- the ready pods: those reporting at least one slot (a pod loading its model reports none);
- hysteresis: an answer below the ready pods is the count that would also carry the rate
  ``FALL_STANDARD_ERRORS`` standard errors higher (never more than the ready pods), so the
  count does not drop and come back on the Poisson noise of a steady load;
- queue growth: the pods' queue depths together grew by more than
  ``QUEUE_GROWTH_PER_READY_POD`` requests per ready pod over the rate window, and then the
  answer is never below the ready pods. A raw positive slope would be noise (the gauges are
  means over a push interval of a random queue), and a guard that fires on noise holds the count
  for the HPA's whole scale-down stabilization window; a queue that grows by a request per pod
  and more is falling behind.

Standard errors are those of a Poisson count: ``sqrt(n) / seconds`` for ``n`` arrivals.

Pure: no store, no clock. ``queueing.MissingInput`` (a pod field nobody sent) and
``ValueError`` (a load beyond the model) pass through for the provider to answer.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from adapter import queueing, rates, sketch
from adapter.report import WORKER_SLOTS
from adapter.slo import Slo

QUEUE_GROWTH_PER_READY_POD = 1.0
"""Queue growth over the rate window, per ready pod, above which the queue counts as growing."""
RECENT_SHARE = 0.25
"""The recent span whose rate may stand for the window's: this share of the rate window."""
RISE_STANDARD_ERRORS = 2.0
"""How far above the window's rate the recent one must be to be taken (by its own noise)."""
FALL_STANDARD_ERRORS = 3.0
"""The margin over the window's rate that fewer pods than the ready ones must also carry."""


class PodState(NamedTuple):
    """What one fresh pod tells the model."""

    change: rates.Change | None
    """Its counts over the rate window (None: nothing within it)."""
    recent: rates.Change | None
    """Its counts over the most recent ``RECENT_SHARE`` of the rate window."""
    slots: float | None
    """Its ``inference_worker_slots`` gauge (None: not reported)."""
    longer: rates.Change | None = None
    """Its counts over the trend window (the latency window), for a ``lead``."""


@dataclass(frozen=True)
class Sizing:
    """An estimate and the inputs it was made from (for messages, logs and timelines)."""

    estimate: queueing.ReplicaEstimate
    arrival_rate: float
    """Offered requests per second (the window's or the recent one, with the backlog's)."""
    slots_per_pod: int
    ready_pods: int
    queue_growing: bool
    mean_service_seconds: float | None
    """None when no service time was reported (nothing arrived)."""


class _Rate(NamedTuple):
    """Arrivals per second over a span, and the standard error of that estimate."""

    per_second: float
    standard_error: float


def _rate(changes: Sequence[rates.Change]) -> _Rate:
    """The pods' summed arrival rate, each over its own span."""
    per_second = sum(c.arrived / c.seconds for c in changes)
    variance = sum(c.arrived / c.seconds**2 for c in changes)
    return _Rate(per_second, math.sqrt(variance))


def _forecast(
    window: _Rate, longer: _Rate, lead_seconds: float, spans: tuple[float, float]
) -> float:
    """The window's rate carried on to ``lead_seconds`` from now at the slope between the
    longer span's rate and the window's, when that rise is above their noise (else the window's
    rate). ``spans`` are the two spans in seconds (window, longer)."""
    short, long_ = spans
    if long_ <= short:  # no longer span to read a trend against
        return window.per_second
    rise = window.per_second - longer.per_second
    counts_short = window.per_second * short
    counts_rest = max(0.0, longer.per_second * long_ - counts_short)
    noise = math.sqrt(counts_short * (1 / short - 1 / long_) ** 2 + counts_rest / long_**2)
    if rise <= RISE_STANDARD_ERRORS * noise:
        return window.per_second
    slope = rise / ((long_ - short) / 2)
    return window.per_second + slope * (lead_seconds + short / 2)


def size(
    pods: Sequence[PodState],
    service: sketch.LatencySketch,
    slo: Slo,
    rate_window_seconds: float,
    trend_window_seconds: float = 0.0,
) -> Sizing:
    """The replica count that meets ``slo`` for the load ``pods`` report.

    Raises ``queueing.MissingInput`` naming ``inference_worker_slots`` when no pod reports
    slots (or every one reports 0: none is ready), or ``service_time`` when requests arrive but
    no service time was reported; ``ValueError`` for a load beyond ``queueing.MAX_OFFERED_LOAD``.
    """
    reported = [p.slots for p in pods if p.slots is not None]
    ready_slots = [s for s in reported if s >= 1]
    if not ready_slots:
        why = (
            f"no pod reports worker slots (gauge {WORKER_SLOTS})"
            if not reported
            else f"no pod is ready: each reports 0 worker slots (gauge {WORKER_SLOTS})"
        )
        raise queueing.MissingInput(WORKER_SLOTS, why)
    slots, ready = math.floor(min(ready_slots)), len(ready_slots)
    changes = [p.change for p in pods if p.change is not None]
    window = _rate(changes)
    recent = _rate([p.recent for p in pods if p.recent is not None])
    backlog = sum(c.queue for c in changes) / rate_window_seconds
    arrival_rate = max(
        window.per_second, recent.per_second - RISE_STANDARD_ERRORS * recent.standard_error
    )
    if slo.lead_seconds > 0:
        longer = _rate([p.longer for p in pods if p.longer is not None])
        spans = (rate_window_seconds, trend_window_seconds)
        arrival_rate = max(arrival_rate, _forecast(window, longer, slo.lead_seconds, spans))
    queue_growing = sum(c.queue_growth for c in changes) > QUEUE_GROWTH_PER_READY_POD * ready
    distribution = queueing.ServiceTime.from_sketch(service)

    def estimate(rate: float) -> queueing.ReplicaEstimate:
        return queueing.required_replicas(
            arrival_rate=rate,
            service=distribution,
            slots_per_pod=slots,
            ready_pods=ready,
            slo_seconds=slo.seconds,
            quantile=slo.quantile,
            queue_growing=queue_growing,
        )

    answer = estimate(arrival_rate + backlog)
    if answer.replicas < ready:
        margin = estimate(arrival_rate + backlog + FALL_STANDARD_ERRORS * window.standard_error)
        if margin.replicas > answer.replicas:
            answer = dataclasses.replace(
                answer, replicas=min(ready, margin.replicas), basis=queueing.Basis.HELD
            )
    return Sizing(
        answer,
        arrival_rate + backlog,
        slots,
        ready,
        queue_growing,
        distribution.mean_seconds if distribution is not None else None,
    )
