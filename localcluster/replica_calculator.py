"""The HPA's ReplicaCalculator: one metric's observation in, a replica-count proposal out.

Role: the per-metric half of the desired-replica math of the Kubernetes horizontal pod
autoscaler (``pkg/controller/podautoscaler/replica_calculator.go`` and
``metrics/utilization.go``), as pure functions over frozen dataclasses. Each public function is
named after its upstream counterpart in snake_case:

=====================================  =================================================
upstream                               here
=====================================  =================================================
``GetResourceReplicas``                :func:`get_resource_replicas`
``GetRawResourceReplicas``             :func:`get_raw_resource_replicas`
``GetMetricReplicas``                  :func:`get_metric_replicas`
``calcPlainMetricReplicas``            :func:`calc_plain_metric_replicas`
``GetObjectMetricReplicas``            :func:`get_object_metric_replicas`
``getUsageRatioReplicaCount``          :func:`get_usage_ratio_replica_count`
``GetObjectPerPodMetricReplicas``      :func:`get_object_per_pod_metric_replicas`
``getReadyPodsCount``                  :func:`get_ready_pods_count`
``GetExternalMetricReplicas``          :func:`get_external_metric_replicas`
``GetExternalPerPodMetricReplicas``    :func:`get_external_per_pod_metric_replicas`
``groupPods``                          :func:`group_pods`
``calculateRequests``                  :func:`calculate_requests`
``GetResourceUtilizationRatio``        :func:`get_resource_utilization_ratio`
``GetMetricUsageRatio``                :func:`get_metric_usage_ratio`
``Tolerances.isWithin``                :meth:`Tolerances.is_within`
=====================================  =================================================

Where upstream *fetches* (the metrics client, the pod lister), these functions take what was
fetched: the pods listed with the target's scale selector, and the metric values as the
metrics APIs returned them or the error the fetch produced (:class:`FetchError`). The metrics
client's own checks (an empty list is an error) happen here, so a caller only has to pass
along what it got. Failures raise :class:`MetricComputationError` carrying upstream's message.

Arithmetic is upstream's, bit for bit: values are integer milli-units (``MilliValue()``),
averages and utilization percents use Go's truncating integer division, ratios are float64
(Python floats), every replica count is ``ceil`` of a float64 product, capped at int32 max.

Pure and standard-library only: no I/O, no clock (``now`` is an argument, seconds on any
monotonic-enough scale shared with the pod and sample timestamps), no logging.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "CPU",
    "ExternalMetricValues",
    "FetchError",
    "MetricComputationError",
    "ObjectMetricValue",
    "Pod",
    "PodGroups",
    "PodMetricSample",
    "PodMetrics",
    "PodReadinessConfig",
    "Proposal",
    "ResourceUtilizationProposal",
    "Tolerances",
    "calc_plain_metric_replicas",
    "calculate_requests",
    "get_external_metric_replicas",
    "get_external_per_pod_metric_replicas",
    "get_metric_replicas",
    "get_metric_usage_ratio",
    "get_object_metric_replicas",
    "get_object_per_pod_metric_replicas",
    "get_raw_resource_replicas",
    "get_ready_pods_count",
    "get_resource_replicas",
    "get_resource_utilization_ratio",
    "get_usage_ratio_replica_count",
    "group_pods",
]

CPU = "cpu"
"""The one resource whose samples are subject to the pod readiness rules of :func:`group_pods`."""

MEMORY = "memory"

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

POD_RUNNING = "Running"
POD_PENDING = "Pending"
POD_FAILED = "Failed"

DEFAULT_METRIC_WINDOW_SECONDS = 60.0
"""What the metrics client assumes when a custom metric sample carries no window."""


class MetricComputationError(Exception):
    """A metric could not yield a proposal; ``str()`` is upstream's error text for it."""


# --- inputs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pod:
    """What the HPA reads from one pod selected by the target's scale selector.

    Times are seconds on the caller's clock (the same scale as ``now``). ``start_time`` is
    ``None`` when ``status.startTime`` was never set. ``ready`` is the status of the pod's
    ``Ready`` condition (``None``: the pod has no such condition) and
    ``ready_transition_time`` that condition's ``lastTransitionTime``.
    ``deletion_timestamp`` is ``metadata.deletionTimestamp`` (only whether it is set matters).
    Requests are the pod's summed container requests in milli-units (millicores,
    milli-bytes); ``None`` means some container lacks a request for that resource, which makes
    utilization targets on it fail, as upstream.
    """

    name: str
    phase: str = POD_RUNNING
    ready: bool | None = True
    ready_transition_time: float = 0.0
    start_time: float | None = 0.0
    deletion_timestamp: float | None = None
    cpu_request_milli: int | None = None
    memory_request_milli: int | None = None

    @property
    def deleting(self) -> bool:
        """Whether the pod is being deleted (a deletion timestamp is set)."""
        return self.deletion_timestamp is not None

    def request_milli(self, resource: str) -> int | None:
        """This pod's request for ``resource`` (``cpu`` or ``memory``), ``None`` if unset."""
        if resource == CPU:
            return self.cpu_request_milli
        if resource == MEMORY:
            return self.memory_request_milli
        return None


@dataclass(frozen=True)
class PodMetricSample:
    """One pod's value from the resource or custom metrics API.

    ``value_milli`` is ``MilliValue()`` of the reported quantity (for a resource: the sum over
    the pod's containers). ``timestamp`` and ``window_seconds`` describe the sampling window;
    only the CPU readiness rule looks at them.
    """

    pod: str
    value_milli: int
    timestamp: float = 0.0
    window_seconds: float = DEFAULT_METRIC_WINDOW_SECONDS


@dataclass(frozen=True)
class PodMetrics:
    """The per-pod values one Resource or Pods metric query returned (possibly none).

    Samples may name pods that do not exist (they are kept, as upstream keeps them); a pod
    named twice keeps its last sample, as a Go map would.
    """

    samples: tuple[PodMetricSample, ...] = ()

    def by_pod(self) -> dict[str, PodMetricSample]:
        """The samples keyed by pod name."""
        return {sample.pod: sample for sample in self.samples}


@dataclass(frozen=True)
class ObjectMetricValue:
    """The single value the custom metrics API returned for an Object metric."""

    value_milli: int
    timestamp: float = 0.0


@dataclass(frozen=True)
class ExternalMetricValues:
    """Every series the external metrics API returned for the metric's selector (summed)."""

    values_milli: tuple[int, ...] = ()
    timestamp: float = 0.0


@dataclass(frozen=True)
class FetchError:
    """A fetch that failed; ``message`` is what the client reported (it is wrapped, not parsed)."""

    message: str


@dataclass(frozen=True)
class Tolerances:
    """Usage-ratio tolerances around 1, one per direction.

    A ratio ``r`` changes nothing iff ``1 - scale_down <= r <= 1 + scale_up``.
    """

    scale_up: float = 0.1
    scale_down: float = 0.1

    def is_within(self, usage_ratio: float) -> bool:
        """Whether ``usage_ratio`` is close enough to 1 to keep the current replica count."""
        return (1.0 - self.scale_down) <= usage_ratio <= (1.0 + self.scale_up)

    def __str__(self) -> str:
        return f"[down:{self.scale_down * 100:.1f}%, up:{self.scale_up * 100:.1f}%]"


@dataclass(frozen=True)
class PodReadinessConfig:
    """The two controller durations that decide whether a pod's CPU sample can be trusted.

    Defaults are the controller's production flags; upstream's unit tests use 120 s and 10 s.
    """

    cpu_initialization_period_seconds: float = 300.0
    """``--horizontal-pod-autoscaler-cpu-initialization-period``: after a pod starts, its CPU
    samples are distrusted unless it is Ready and the sample postdates readiness by a window."""
    delay_of_initial_readiness_status_seconds: float = 30.0
    """``--horizontal-pod-autoscaler-initial-readiness-delay``: an unready pod whose readiness
    last changed within this delay after start is taken as never having been ready."""


# --- outputs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proposal:
    """A replica count proposed by one metric and the usage to report in ``currentMetrics``.

    ``usage_milli`` is the average per pod (Pods, Resource AverageValue, Object/External
    AverageValue) or the total (Object/External Value), in milli-units, as upstream reports it.
    """

    replicas: int
    usage_milli: int
    timestamp: float = 0.0


@dataclass(frozen=True)
class ResourceUtilizationProposal:
    """A proposal from a Resource Utilization target: the integer percent and the raw average."""

    replicas: int
    utilization_percent: int
    raw_average_milli: int
    timestamp: float = 0.0


@dataclass(frozen=True)
class PodGroups:
    """How :func:`group_pods` sorted the pods: counted, left out for now, missing, ignored."""

    ready_pod_count: int
    unready_pods: frozenset[str]
    missing_pods: frozenset[str]
    ignored_pods: frozenset[str]


# --- Go arithmetic ---------------------------------------------------------------------------


def _go_int_div(a: int, b: int) -> int:
    """Go's integer division: truncates toward zero (Python's ``//`` floors)."""
    quotient = abs(a) // abs(b)
    return quotient if (a >= 0) == (b > 0) else -quotient


def _go_float_div(a: float, b: float) -> float:
    """float64 division as Go does it: dividing by zero gives an infinity or NaN, not an error."""
    if b == 0:
        if a == 0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def _ceil_to_int32(value: float) -> int:
    """``int32(math.Ceil(value))`` with the overflow cap newer upstream copies apply.

    Values above int32 max become int32 max (NaN is taken as 0); Go leaves these undefined in
    older copies, the recent ones cap them.
    """
    if math.isnan(value):
        return 0
    if value > INT32_MAX:
        return INT32_MAX
    if value < -INT32_MAX - 1:
        return -INT32_MAX - 1
    return math.ceil(value)


def _ceil_to_int64(value: float) -> int:
    """``int64(math.Ceil(value))``, capped at int64 max as the recent external-metric code does."""
    if math.isnan(value):
        return 0
    if value >= INT64_MAX:
        return INT64_MAX
    return math.ceil(value)


# --- pod grouping and ratios -----------------------------------------------------------------


def group_pods(
    pods: Sequence[Pod],
    metrics: Mapping[str, PodMetricSample],
    resource: str,
    *,
    now: float,
    config: PodReadinessConfig,
) -> PodGroups:
    """Sort pods into ready (counted), unready, missing (no sample) and ignored.

    Checks run in upstream's order: a pod being deleted or ``Failed`` is ignored; ``Pending``
    is unready; without a sample it is missing; and only for the ``cpu`` resource a pod is
    unready when it has no Ready condition or start time, when it is within the CPU
    initialization period and either not Ready or its sample began before one window after
    its last readiness change, or, past that period, when it is not Ready and never became
    ready after the initial readiness delay. For every other metric readiness is not
    consulted: a Running pod that is not Ready but reports a sample counts as ready.
    ``resource`` is ``""`` for custom (Pods) metrics.
    """
    ready_pod_count = 0
    unready: set[str] = set()
    missing: set[str] = set()
    ignored: set[str] = set()
    for pod in pods:
        if pod.deleting or pod.phase == POD_FAILED:
            ignored.add(pod.name)
            continue
        if pod.phase == POD_PENDING:
            unready.add(pod.name)
            continue
        sample = metrics.get(pod.name)
        if sample is None:
            missing.add(pod.name)
            continue
        if resource == CPU and _cpu_sample_unready(pod, sample, now=now, config=config):
            unready.add(pod.name)
            continue
        ready_pod_count += 1
    return PodGroups(ready_pod_count, frozenset(unready), frozenset(missing), frozenset(ignored))


def _cpu_sample_unready(
    pod: Pod, sample: PodMetricSample, *, now: float, config: PodReadinessConfig
) -> bool:
    """Upstream's CPU readiness rule for one pod with a sample (comparisons strict, as Go's)."""
    if pod.ready is None or pod.start_time is None:
        return True
    if pod.start_time + config.cpu_initialization_period_seconds > now:
        return (not pod.ready) or (
            sample.timestamp < pod.ready_transition_time + sample.window_seconds
        )
    return (not pod.ready) and (
        pod.start_time + config.delay_of_initial_readiness_status_seconds
        > pod.ready_transition_time
    )


def calculate_requests(pods: Sequence[Pod], resource: str) -> dict[str, int]:
    """Every listed pod's request for ``resource`` in milli-units, keyed by pod name.

    Raises :class:`MetricComputationError` when a pod has no request for it, whatever its
    phase: upstream computes requests for the whole pod list.
    """
    requests: dict[str, int] = {}
    for pod in pods:
        request = pod.request_milli(resource)
        if request is None:
            raise MetricComputationError(f"missing request for {resource} in Pod {pod.name}")
        requests[pod.name] = request
    return requests


def get_resource_utilization_ratio(
    metrics: Mapping[str, int], requests: Mapping[str, int], target_utilization: int
) -> tuple[float, int, int]:
    """``(ratio, utilization %, raw average)`` over the samples of pods with a request.

    Samples without a request (pods that do not exist) are left out. Utilization is
    ``trunc(100 * sum(usage) / sum(request))`` and the raw average ``trunc(sum / count)``.
    Raises when no sample matched a request (or all requests are zero).
    """
    metrics_total = 0
    requests_total = 0
    entries = 0
    for pod_name, value in metrics.items():
        request = requests.get(pod_name)
        if request is None:
            continue
        metrics_total += value
        requests_total += request
        entries += 1
    if requests_total == 0:
        raise MetricComputationError("no metrics returned matched known pods")
    utilization = _go_int_div(metrics_total * 100, requests_total)
    ratio = _go_float_div(float(utilization), float(target_utilization))
    return ratio, utilization, _go_int_div(metrics_total, entries)


def get_metric_usage_ratio(metrics: Mapping[str, int], target_usage: int) -> tuple[float, int]:
    """``(ratio, average)`` with the average ``trunc(sum / count)`` over every sample given."""
    total = sum(metrics.values())
    usage = _go_int_div(total, len(metrics))
    return _go_float_div(float(usage), float(target_usage)), usage


# --- Resource and Pods metrics ---------------------------------------------------------------


def _pod_samples(
    metrics: PodMetrics | FetchError, *, api: str, wrap: str
) -> tuple[dict[str, PodMetricSample], float]:
    """The metrics client step: an error or an empty list fails, otherwise samples by pod."""
    if isinstance(metrics, FetchError):
        raise MetricComputationError(f"{wrap}: {metrics.message}")
    if not metrics.samples:
        raise MetricComputationError(f"{wrap}: no metrics returned from {api}")
    return metrics.by_pod(), metrics.samples[0].timestamp


def get_resource_replicas(
    current_replicas: int,
    target_utilization: int,
    resource: str,
    tolerances: Tolerances,
    pods: Sequence[Pod],
    metrics: PodMetrics | FetchError,
    *,
    now: float,
    config: PodReadinessConfig,
) -> ResourceUtilizationProposal:
    """Replicas for a Resource metric with an ``Utilization`` target (percent of request).

    ``current_replicas`` is the scale's ``spec.replicas``. Without missing pods, and unless
    unready pods exist while scaling up, the answer is ``current_replicas`` within tolerance,
    else ``ceil(ratio * ready pods)``. Otherwise the ratio is recomputed with missing pods
    assumed at ``max(100, target)`` percent of their request on a scale-down (0 on a scale-up)
    and unready pods at 0 on a scale-up; no change if that new ratio is within tolerance or
    points the other way, else ``ceil(new ratio * samples)``, unless that count moves against
    the new ratio's direction. The reported utilization and raw average are the first,
    un-rebalanced numbers.
    """
    by_pod, timestamp = _pod_samples(
        metrics,
        api="resource metrics API",
        wrap=f"unable to get metrics for resource {resource}",
    )
    if not pods:
        raise MetricComputationError("no pods returned by selector while calculating replica count")
    groups = group_pods(pods, by_pod, resource, now=now, config=config)
    values = {
        name: sample.value_milli
        for name, sample in by_pod.items()
        if name not in groups.ignored_pods and name not in groups.unready_pods
    }
    if not values:
        raise MetricComputationError(
            "did not receive metrics for targeted pods (pods might be unready)"
        )
    requests = calculate_requests(pods, resource)
    usage_ratio, utilization, raw_average = get_resource_utilization_ratio(
        values, requests, target_utilization
    )

    scale_up_with_unready = bool(groups.unready_pods) and usage_ratio > 1.0
    if not scale_up_with_unready and not groups.missing_pods:
        if tolerances.is_within(usage_ratio):
            return ResourceUtilizationProposal(
                current_replicas, utilization, raw_average, timestamp
            )
        replicas = _ceil_to_int32(usage_ratio * groups.ready_pod_count)
        return ResourceUtilizationProposal(replicas, utilization, raw_average, timestamp)

    if groups.missing_pods:
        if usage_ratio < 1.0:
            fallback_percent = max(100, target_utilization)
            for name in groups.missing_pods:
                values[name] = _go_int_div(requests[name] * fallback_percent, 100)
        elif usage_ratio > 1.0:
            for name in groups.missing_pods:
                values[name] = 0
    if scale_up_with_unready:
        for name in groups.unready_pods:
            values[name] = 0

    new_usage_ratio, _, _ = get_resource_utilization_ratio(values, requests, target_utilization)
    if _keep_current(tolerances, usage_ratio, new_usage_ratio):
        return ResourceUtilizationProposal(current_replicas, utilization, raw_average, timestamp)
    new_replicas = _ceil_to_int32(new_usage_ratio * len(values))
    if _count_flips_direction(new_usage_ratio, new_replicas, current_replicas):
        return ResourceUtilizationProposal(current_replicas, utilization, raw_average, timestamp)
    return ResourceUtilizationProposal(new_replicas, utilization, raw_average, timestamp)


def _keep_current(tolerances: Tolerances, usage_ratio: float, new_usage_ratio: float) -> bool:
    """The rebalanced ratio is within tolerance, or rebalancing reversed the direction."""
    return (
        tolerances.is_within(new_usage_ratio)
        or (usage_ratio < 1.0 < new_usage_ratio)
        or (usage_ratio > 1.0 > new_usage_ratio)
    )


def _count_flips_direction(new_usage_ratio: float, new_replicas: int, current: int) -> bool:
    """The sample count (not the ratio) would move the replica count against the ratio."""
    return (new_usage_ratio < 1.0 and new_replicas > current) or (
        new_usage_ratio > 1.0 and new_replicas < current
    )


def get_raw_resource_replicas(
    current_replicas: int,
    target_usage_milli: int,
    resource: str,
    tolerances: Tolerances,
    pods: Sequence[Pod],
    metrics: PodMetrics | FetchError,
    *,
    now: float,
    config: PodReadinessConfig,
) -> Proposal:
    """Replicas for a Resource metric with an ``AverageValue`` target (milli-units per pod).

    The Pods-metric algorithm (:func:`calc_plain_metric_replicas`) over resource samples,
    with the CPU readiness rules applied when ``resource`` is ``cpu``.
    """
    by_pod, timestamp = _pod_samples(
        metrics,
        api="resource metrics API",
        wrap=f"unable to get metrics for resource {resource}",
    )
    replicas, usage = calc_plain_metric_replicas(
        by_pod,
        current_replicas,
        target_usage_milli,
        tolerances,
        pods,
        resource,
        now=now,
        config=config,
    )
    return Proposal(replicas, usage, timestamp)


def get_metric_replicas(
    current_replicas: int,
    target_usage_milli: int,
    metric_name: str,
    tolerances: Tolerances,
    pods: Sequence[Pod],
    metrics: PodMetrics | FetchError,
) -> Proposal:
    """Replicas for a Pods metric (custom metric averaged over the pods, ``AverageValue``).

    Readiness is not consulted for custom metrics, so no clock or readiness config is needed.
    """
    by_pod, timestamp = _pod_samples(
        metrics, api="custom metrics API", wrap=f"unable to get metric {metric_name}"
    )
    replicas, usage = calc_plain_metric_replicas(
        by_pod,
        current_replicas,
        target_usage_milli,
        tolerances,
        pods,
        "",
        now=0.0,
        config=PodReadinessConfig(),
    )
    return Proposal(replicas, usage, timestamp)


def calc_plain_metric_replicas(
    metrics: Mapping[str, PodMetricSample],
    current_replicas: int,
    target_usage_milli: int,
    tolerances: Tolerances,
    pods: Sequence[Pod],
    resource: str,
    *,
    now: float,
    config: PodReadinessConfig,
) -> tuple[int, int]:
    """``(replicas, reported average)`` for a plain per-pod average target.

    Samples of ignored and unready pods are dropped (stray samples for unknown pods stay in).
    ``usage = trunc(sum / count)``; without missing pods and unless unready pods exist on a
    scale-up: within tolerance → ``current_replicas``, else ``ceil(ratio * ready pods)``.
    Otherwise missing pods are assumed exactly at target on a scale-down (0 on a scale-up),
    unready pods at 0 on a scale-up, and the recomputed ratio decides as in
    :func:`get_resource_replicas`. The reported average is always the first ``usage``.
    """
    if not pods:
        raise MetricComputationError("no pods returned by selector while calculating replica count")
    groups = group_pods(pods, metrics, resource, now=now, config=config)
    values = {
        name: sample.value_milli
        for name, sample in metrics.items()
        if name not in groups.ignored_pods and name not in groups.unready_pods
    }
    if not values:
        raise MetricComputationError(
            "did not receive metrics for targeted pods (pods might be unready)"
        )
    usage_ratio, usage = get_metric_usage_ratio(values, target_usage_milli)

    scale_up_with_unready = bool(groups.unready_pods) and usage_ratio > 1.0
    if not scale_up_with_unready and not groups.missing_pods:
        if tolerances.is_within(usage_ratio):
            return current_replicas, usage
        return _ceil_to_int32(usage_ratio * groups.ready_pod_count), usage

    if groups.missing_pods:
        if usage_ratio < 1.0:
            for name in groups.missing_pods:
                values[name] = target_usage_milli
        elif usage_ratio > 1.0:
            for name in groups.missing_pods:
                values[name] = 0
    if scale_up_with_unready:
        for name in groups.unready_pods:
            values[name] = 0

    new_usage_ratio, _ = get_metric_usage_ratio(values, target_usage_milli)
    if _keep_current(tolerances, usage_ratio, new_usage_ratio):
        return current_replicas, usage
    new_replicas = _ceil_to_int32(new_usage_ratio * len(values))
    if _count_flips_direction(new_usage_ratio, new_replicas, current_replicas):
        return current_replicas, usage
    return new_replicas, usage


# --- Object and External metrics -------------------------------------------------------------


def get_ready_pods_count(pods: Sequence[Pod]) -> int:
    """How many pods are ``Running`` with Ready=True (pods being deleted included).

    Raises when the selector listed no pods at all.
    """
    if not pods:
        raise MetricComputationError("no pods returned by selector while calculating replica count")
    return sum(1 for pod in pods if pod.phase == POD_RUNNING and pod.ready is True)


def get_usage_ratio_replica_count(
    current_replicas: int, usage_ratio: float, tolerances: Tolerances, pods: Sequence[Pod]
) -> int:
    """Replicas for a whole-object ratio: ``ceil(ratio * ready pods)`` outside tolerance.

    Within tolerance the answer is ``current_replicas``. When ``current_replicas`` is 0
    (scale from zero) the answer is ``ceil(ratio)`` and tolerance is not applied.
    """
    if current_replicas == 0:
        return _ceil_to_int32(usage_ratio)
    if tolerances.is_within(usage_ratio):
        return current_replicas
    try:
        ready_pods = get_ready_pods_count(pods)
    except MetricComputationError as error:
        raise MetricComputationError(f"unable to calculate ready pods: {error}") from error
    return _ceil_to_int32(usage_ratio * ready_pods)


def _object_value(
    value: ObjectMetricValue | FetchError, metric_name: str, kind: str, name: str, namespace: str
) -> ObjectMetricValue:
    if isinstance(value, FetchError):
        # Upstream's format string puts its arguments in this (odd) order.
        raise MetricComputationError(
            f"unable to get metric {metric_name}: {kind} on {namespace} {name}/{value.message}"
        )
    return value


def get_object_metric_replicas(
    current_replicas: int,
    target_value_milli: int,
    metric_name: str,
    tolerances: Tolerances,
    pods: Sequence[Pod],
    value: ObjectMetricValue | FetchError,
    *,
    object_kind: str = "",
    object_name: str = "",
    namespace: str = "default",
) -> Proposal:
    """Replicas for an Object metric with a ``Value`` target.

    ``ratio = value / target``; see :func:`get_usage_ratio_replica_count`. The product uses
    the *ready* pod count, not ``current_replicas`` (spec replicas), so unready pods shrink
    the proposal. The reported usage is the object's value.
    """
    observed = _object_value(value, metric_name, object_kind, object_name, namespace)
    usage_ratio = _go_float_div(float(observed.value_milli), float(target_value_milli))
    replicas = get_usage_ratio_replica_count(current_replicas, usage_ratio, tolerances, pods)
    return Proposal(replicas, observed.value_milli, observed.timestamp)


def get_object_per_pod_metric_replicas(
    status_replicas: int,
    target_average_value_milli: int,
    metric_name: str,
    tolerances: Tolerances,
    value: ObjectMetricValue | FetchError,
    *,
    object_kind: str = "",
    object_name: str = "",
    namespace: str = "default",
) -> Proposal:
    """Replicas for an Object metric with an ``AverageValue`` target.

    With ``s = status_replicas`` (the scale's ``status.replicas``): ``ratio = value /
    (target * s)``; within tolerance → ``s``, else ``ceil(value / target)``; no pod is looked
    at. The reported average is ``ceil(value / s)``.
    """
    observed = _object_value(value, metric_name, object_kind, object_name, namespace)
    proposal = _per_pod_proposal(
        status_replicas, target_average_value_milli, observed.value_milli, tolerances
    )
    return dataclasses.replace(proposal, timestamp=observed.timestamp)


def _per_pod_proposal(
    status_replicas: int, target_per_pod: int, total: int, tolerances: Tolerances
) -> Proposal:
    """The AverageValue rule shared by Object and External metrics (timestamp filled later).

    Upstream has no guard for ``status_replicas == 0``: the ratio is then infinite (a new
    count ``ceil(total / target)``) and the reported average is capped at int64 max (0 for 0/0).
    """
    replicas = status_replicas
    usage_ratio = _go_float_div(float(total), float(target_per_pod) * float(status_replicas))
    if not tolerances.is_within(usage_ratio):
        replicas = _ceil_to_int32(_go_float_div(float(total), float(target_per_pod)))
    if float(total) >= float(INT64_MAX):
        usage = INT64_MAX
    else:
        usage = _ceil_to_int64(_go_float_div(float(total), float(status_replicas)))
    return Proposal(replicas, usage)


def _external_total(
    values: ExternalMetricValues | FetchError, metric_name: str, selector_text: str, namespace: str
) -> tuple[int, float]:
    if isinstance(values, FetchError):
        message = values.message
    elif not values.values_milli:
        message = "no metrics returned from external metrics API"
    else:
        return min(sum(values.values_milli), INT64_MAX), values.timestamp
    raise MetricComputationError(
        f"unable to get external metric {namespace}/{metric_name}/{selector_text}: {message}"
    )


def get_external_metric_replicas(
    current_replicas: int,
    target_value_milli: int,
    metric_name: str,
    tolerances: Tolerances,
    pods: Sequence[Pod],
    values: ExternalMetricValues | FetchError,
    *,
    selector_text: str = "nil",
    namespace: str = "default",
) -> Proposal:
    """Replicas for an External metric with a ``Value`` target: Object ``Value`` on the sum.

    All series returned for the metric's selector are summed (capped at int64 max); an empty
    list is an error. ``selector_text`` only appears in error messages.
    """
    total, timestamp = _external_total(values, metric_name, selector_text, namespace)
    usage_ratio = _go_float_div(float(total), float(target_value_milli))
    replicas = get_usage_ratio_replica_count(current_replicas, usage_ratio, tolerances, pods)
    return Proposal(replicas, total, timestamp)


def get_external_per_pod_metric_replicas(
    status_replicas: int,
    target_average_value_milli: int,
    metric_name: str,
    tolerances: Tolerances,
    values: ExternalMetricValues | FetchError,
    *,
    selector_text: str = "nil",
    namespace: str = "default",
) -> Proposal:
    """Replicas for an External metric with an ``AverageValue`` target: Object ``AverageValue``
    on the sum of all returned series (``status.replicas`` based, no pods consulted)."""
    total, timestamp = _external_total(values, metric_name, selector_text, namespace)
    proposal = _per_pod_proposal(status_replicas, target_average_value_milli, total, tolerances)
    return dataclasses.replace(proposal, timestamp=timestamp)
