"""The HPA controller's desired-replica math: one ``reconcile`` pass as a function of its inputs.

Role: the pure core of the local HPA emulator. It reproduces the arithmetic and bookkeeping of
the Kubernetes horizontal pod autoscaler (``pkg/controller/podautoscaler/horizontal.go``, API
defaulting from ``pkg/apis/autoscaling/v2/defaults.go``) over frozen dataclasses; the
per-metric proposals come from :mod:`localcluster.replica_calculator`. A controller loop
fetches the scale, the pods and the metric values, calls :func:`reconcile`, applies the
returned scale, writes the returned status, emits the returned events and carries the returned
:class:`HpaState` to the next pass. Upstream keeps that state in controller memory keyed by
HPA; here it is a value in and a value out.

Functions are named after their upstream counterparts in snake_case:

==========================================  ==================================================
upstream                                    here
==========================================  ==================================================
``reconcileAutoscaler``                     :func:`reconcile`
``computeReplicasForMetrics``               :func:`compute_replicas_for_metrics`
``computeReplicasForMetric`` (with the
``computeStatusFor*Metric`` helpers)        :func:`compute_replicas_for_metric`
``validateAndParseSelector``                :func:`validate_and_parse_selector`
``tolerancesForHpa``                        :func:`tolerances_for_hpa`
``normalizeDesiredReplicas``                :func:`normalize_desired_replicas`
``normalizeDesiredReplicasWithBehaviors``   :func:`normalize_desired_replicas_with_behaviors`
``setConditionInList``                      :func:`set_condition_in_list`
``SetDefaults_HorizontalPodAutoscaler``     :func:`set_defaults_horizontal_pod_autoscaler`
==========================================  ==================================================

Stabilization, rate limits, scale events and the ``behavior`` defaults are in
:mod:`localcluster.scaling`; the per-metric replica calculator is
:mod:`localcluster.replica_calculator`.

Time is seconds on the caller's clock, passed as ``now``; every "within the last N seconds"
test compares timestamps strictly, as Go's ``After``/``Before`` do: a recommendation or scale
event exactly ``N`` seconds old is outside a behavior window or policy period, but inside the
legacy (no ``behavior``) stabilization window, whose code drops only strictly older samples.

Not modelled: ContainerResource metrics (pods carry no per-container data; such a spec is
reported like an unknown metric type), scale-to-zero's newer ``ScaledToZero`` condition, the
pod selection strategy, ``observedGeneration`` and per-HPA sync periods.

Pure: no I/O, no clock reads, no logging; imports only the standard library, the two sibling
modules and :mod:`adapter.selectors` (to parse selectors the way the API server does).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from adapter import selectors
from localcluster import replica_calculator as rc
from localcluster import scaling

__all__ = [
    "Condition",
    "ConditionUpdate",
    "ControllerConfig",
    "Event",
    "HorizontalPodAutoscaler",
    "HpaSpec",
    "HpaState",
    "HpaStatus",
    "MetricFailure",
    "MetricProposal",
    "MetricSpec",
    "MetricStatus",
    "MetricTarget",
    "MetricValueStatus",
    "MetricsOutcome",
    "Normalization",
    "ObjectReference",
    "Observation",
    "ReconcileResult",
    "Scale",
    "compute_replicas_for_metric",
    "compute_replicas_for_metrics",
    "normalize_desired_replicas",
    "normalize_desired_replicas_with_behaviors",
    "reconcile",
    "set_condition_in_list",
    "set_defaults_horizontal_pod_autoscaler",
    "tolerances_for_hpa",
    "validate_and_parse_selector",
]

# Metric source and target types (``autoscaling/v2``).
RESOURCE = "Resource"
PODS = "Pods"
OBJECT = "Object"
EXTERNAL = "External"
UTILIZATION = "Utilization"
AVERAGE_VALUE = "AverageValue"
VALUE = "Value"

# Scaling policies and how to choose among them.

# Condition types and statuses.
ABLE_TO_SCALE = "AbleToScale"
SCALING_ACTIVE = "ScalingActive"
SCALING_LIMITED = "ScalingLimited"
TRUE = "True"
FALSE = "False"

# Event types.
NORMAL = "Normal"
WARNING = "Warning"

DEFAULT_CPU_UTILIZATION = 80
"""The target of the CPU metric the API adds when ``metrics`` is empty."""


# --- spec ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectReference:
    """``CrossVersionObjectReference``: the described object of an Object metric."""

    kind: str
    name: str
    api_version: str = ""


@dataclass(frozen=True)
class MetricTarget:
    """``MetricTarget``: which kind of target and its value, in milli-units where not percent.

    As upstream, the code paths look at which value is set (and for Object metrics also at
    ``type``), so an inconsistent target fails the way it fails upstream.
    """

    type: str
    average_utilization: int | None = None
    """Percent of the pods' requests (Resource metrics only)."""
    average_value_milli: int | None = None
    value_milli: int | None = None


@dataclass(frozen=True)
class MetricSpec:
    """One entry of ``spec.metrics``.

    ``type`` is ``Resource``, ``Pods``, ``Object`` or ``External`` (anything else fails with
    ``InvalidMetricSourceType``). ``resource`` names the resource of a Resource metric
    (``cpu``, ``memory``); ``metric_name`` and ``selector`` (a ``LabelSelector`` as JSON, the
    metric's own label selector) identify a Pods, Object or External metric;
    ``described_object`` is the Object metric's object.
    """

    type: str
    target: MetricTarget
    resource: str | None = None
    metric_name: str | None = None
    selector: selectors.LabelSelector | None = None
    described_object: ObjectReference | None = None


@dataclass(frozen=True)
class HpaSpec:
    """The part of ``spec`` the algorithm reads, as written (defaults applied by :func:`reconcile`).

    ``behavior=None`` selects the legacy normalization path (no policies, no scale events).
    """

    max_replicas: int
    min_replicas: int | None = 1
    metrics: tuple[MetricSpec, ...] = ()
    behavior: scaling.Behavior | None = None


# --- status ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """One ``status.conditions`` entry; ``last_transition_time`` is on the caller's clock."""

    type: str
    status: str
    reason: str
    message: str
    last_transition_time: float


@dataclass(frozen=True)
class MetricValueStatus:
    """``MetricValueStatus``: the current value(s) of one metric, milli-units or percent."""

    value_milli: int | None = None
    average_value_milli: int | None = None
    average_utilization: int | None = None


@dataclass(frozen=True)
class MetricStatus:
    """One ``status.currentMetrics`` entry, echoing the spec's identity of the metric."""

    type: str
    current: MetricValueStatus
    resource: str | None = None
    metric_name: str | None = None
    selector: selectors.LabelSelector | None = None
    described_object: ObjectReference | None = None


@dataclass(frozen=True)
class HpaStatus:
    """``status`` of the HPA.

    ``current_metrics`` has one entry per spec metric when metrics were computed; an entry is
    ``None`` where that metric failed (upstream writes a zero-valued entry, ``{"type": ""}``),
    and the tuple is empty when no metric was evaluated.
    """

    current_replicas: int = 0
    desired_replicas: int = 0
    current_metrics: tuple[MetricStatus | None, ...] = ()
    conditions: tuple[Condition, ...] = ()
    last_scale_time: float | None = None


@dataclass(frozen=True)
class HorizontalPodAutoscaler:
    """The HPA object: identity (for messages), spec, and the status of the previous pass."""

    name: str
    spec: HpaSpec
    namespace: str = "default"
    status: HpaStatus = HpaStatus()
    scale_target_ref: ObjectReference | None = None


@dataclass(frozen=True)
class Scale:
    """The target's ``scale`` subresource.

    ``selector`` is ``status.selector`` (the label selector text); the pods handed to
    :func:`reconcile` must be those it selects.
    """

    spec_replicas: int
    status_replicas: int
    selector: str | None


# --- controller memory -----------------------------------------------------------------------


@dataclass(frozen=True)
class HpaState:
    """What the controller keeps in memory for one HPA between passes.

    ``recommendations=None`` means the controller has not seen this HPA yet: the first pass
    then records the current size (so a fresh controller cannot scale below the current size
    for a whole downscale stabilization window). Drop the state when the HPA is deleted.
    """

    recommendations: tuple[scaling.TimestampedRecommendation, ...] | None = None
    scale_up_events: tuple[scaling.ScaleEvent, ...] = ()
    scale_down_events: tuple[scaling.ScaleEvent, ...] = ()


@dataclass(frozen=True)
class ControllerConfig:
    """The controller's flags that the math depends on; defaults are the production defaults."""

    tolerance: float = 0.1
    """``--horizontal-pod-autoscaler-tolerance``: ratios within ``1 ± tolerance`` keep the size."""
    cpu_initialization_period_seconds: float = 300.0
    """``--horizontal-pod-autoscaler-cpu-initialization-period`` (5 min)."""
    delay_of_initial_readiness_status_seconds: float = 30.0
    """``--horizontal-pod-autoscaler-initial-readiness-delay`` (30 s)."""
    downscale_stabilization_window_seconds: int = 300
    """``--horizontal-pod-autoscaler-downscale-stabilization`` (5 min): the legacy window, and
    the ``behavior.scaleDown`` window when the spec leaves it unset."""
    sync_period_seconds: float = 15.0
    """``--horizontal-pod-autoscaler-sync-period``: how often the loop should call
    :func:`reconcile` for each HPA (the math itself does not use it)."""
    scale_up_limit_factor: float = 2.0
    """Legacy path only: a pass may grow to ``max(factor * current, minimum)``; upstream's
    unit tests set 8."""
    scale_up_limit_minimum: float = 4.0
    configurable_tolerance: bool = True
    """The ``HPAConfigurableTolerance`` feature gate (beta, on, since v1.35): whether
    ``behavior.*.tolerance`` is honoured."""

    def readiness(self) -> rc.PodReadinessConfig:
        """The readiness durations in the replica calculator's terms."""
        return rc.PodReadinessConfig(
            self.cpu_initialization_period_seconds, self.delay_of_initial_readiness_status_seconds
        )


# --- outputs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """A Kubernetes event the controller would record on the HPA."""

    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class ReconcileResult:
    """Everything one pass decided.

    ``rescale`` tells the caller to set the target's ``spec.replicas`` to
    ``status.desired_replicas``. ``status`` is the new HPA status and ``status_changed``
    whether it differs from the previous one (upstream skips the write otherwise). ``state``
    replaces the :class:`HpaState` for the next pass; ``events`` are in emission order;
    ``error`` is what ``reconcileAutoscaler`` returns (for logs), ``None`` on success.
    """

    rescale: bool
    status: HpaStatus
    state: HpaState
    events: tuple[Event, ...]
    status_changed: bool
    error: str | None = None

    @property
    def desired_replicas(self) -> int:
        """``status.desiredReplicas``: the new size when rescaling, else what it was or stays."""
        return self.status.desired_replicas


Observation = rc.PodMetrics | rc.ObjectMetricValue | rc.ExternalMetricValues | rc.FetchError
"""What was fetched for one metric: per-pod values (Resource, Pods), one object value
(Object), the matching series (External), or the fetch's error."""


# --- API defaulting --------------------------------------------------------------------------


def set_defaults_horizontal_pod_autoscaler(spec: HpaSpec) -> HpaSpec:
    """The spec as the API server stores it: ``minReplicas`` 1, CPU 80 % if no metrics,
    and both behavior directions completed when ``behavior`` is set. Idempotent."""
    metrics = spec.metrics or (
        MetricSpec(
            type=RESOURCE,
            resource=rc.CPU,
            target=MetricTarget(UTILIZATION, average_utilization=DEFAULT_CPU_UTILIZATION),
        ),
    )
    behavior = spec.behavior
    if behavior is not None:
        behavior = scaling.Behavior(
            scale_up=scaling.generate_hpa_scale_up_rules(behavior.scale_up),
            scale_down=scaling.generate_hpa_scale_down_rules(behavior.scale_down),
        )
    min_replicas = 1 if spec.min_replicas is None else spec.min_replicas
    return HpaSpec(spec.max_replicas, min_replicas, metrics, behavior)


def tolerances_for_hpa(
    behavior: scaling.Behavior | None, config: ControllerConfig
) -> rc.Tolerances:
    """The cluster tolerance on both sides, overridden per side by ``behavior.*.tolerance``
    when the ``HPAConfigurableTolerance`` gate is on."""
    tolerances = rc.Tolerances(config.tolerance, config.tolerance)
    if behavior is None or not config.configurable_tolerance:
        return tolerances
    if behavior.scale_down is not None and behavior.scale_down.tolerance is not None:
        tolerances = dataclasses.replace(tolerances, scale_down=behavior.scale_down.tolerance)
    if behavior.scale_up is not None and behavior.scale_up.tolerance is not None:
        tolerances = dataclasses.replace(tolerances, scale_up=behavior.scale_up.tolerance)
    return tolerances


# --- conditions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConditionUpdate:
    """A ``setCondition`` call not yet applied: type, status, reason, message."""

    type: str
    status: str
    reason: str
    message: str


def set_condition_in_list(
    conditions: Sequence[Condition],
    condition_type: str,
    status: str,
    reason: str,
    message: str,
    *,
    now: float,
) -> tuple[Condition, ...]:
    """Set one condition type, keeping list order; append it when absent.

    ``last_transition_time`` moves to ``now`` only when the status changes (or the condition
    is new); reason and message are always replaced.
    """
    result = list(conditions)
    for index, existing in enumerate(result):
        if existing.type == condition_type:
            changed = existing.status != status
            transition = now if changed else existing.last_transition_time
            result[index] = Condition(condition_type, status, reason, message, transition)
            return tuple(result)
    result.append(Condition(condition_type, status, reason, message, now))
    return tuple(result)


def _apply(
    conditions: tuple[Condition, ...], updates: Sequence[ConditionUpdate], now: float
) -> tuple[Condition, ...]:
    for update in updates:
        conditions = set_condition_in_list(
            conditions, update.type, update.status, update.reason, update.message, now=now
        )
    return conditions


# --- legacy normalization (no behavior) ------------------------------------------------------


@dataclass(frozen=True)
class Normalization:
    """Desired replicas after stabilization and limits, with the conditions to set (in order)
    and the recommendation history to keep."""

    replicas: int
    conditions: tuple[ConditionUpdate, ...]
    recommendations: tuple[scaling.TimestampedRecommendation, ...]


_READY_FOR_NEW_SCALE = ConditionUpdate(
    ABLE_TO_SCALE, TRUE, "ReadyForNewScale", "recommended size matches current size"
)


def normalize_desired_replicas(
    recommendations: Sequence[scaling.TimestampedRecommendation],
    current_replicas: int,
    prenormalized_desired_replicas: int,
    min_replicas: int,
    max_replicas: int,
    *,
    config: ControllerConfig,
    now: float,
) -> Normalization:
    """The legacy path (``behavior`` unset): stabilize scale-downs, then clamp.

    ``AbleToScale`` becomes ``ScaleDownStabilized`` when the window held a higher
    recommendation, else ``ReadyForNewScale``; ``ScalingLimited`` is True when clamping
    changed the stabilized value.
    """
    stabilized = scaling.stabilize_recommendation(
        recommendations,
        prenormalized_desired_replicas,
        config.downscale_stabilization_window_seconds,
        now=now,
    )
    if stabilized.replicas != prenormalized_desired_replicas:
        able = ConditionUpdate(
            ABLE_TO_SCALE,
            TRUE,
            "ScaleDownStabilized",
            "recent recommendations were higher than current one, "
            "applying the highest recent recommendation",
        )
    else:
        able = _READY_FOR_NEW_SCALE
    limited = scaling.convert_desired_replicas_with_rules(
        current_replicas,
        stabilized.replicas,
        min_replicas,
        max_replicas,
        scale_up_limit_factor=config.scale_up_limit_factor,
        scale_up_limit_minimum=config.scale_up_limit_minimum,
    )
    status = FALSE if limited.replicas == stabilized.replicas else TRUE
    limit = ConditionUpdate(SCALING_LIMITED, status, limited.reason, limited.message)
    return Normalization(limited.replicas, (able, limit), stabilized.recommendations)


# --- behavior normalization ------------------------------------------------------------------


def normalize_desired_replicas_with_behaviors(
    behavior: scaling.Behavior,
    state: HpaState,
    current_replicas: int,
    prenormalized_desired_replicas: int,
    min_replicas: int,
    max_replicas: int,
    *,
    config: ControllerConfig,
    now: float,
) -> Normalization:
    """The behavior path: two-sided stabilization, then policy rate limits and min/max.

    ``behavior`` is completed with API defaults and the controller's downscale window first,
    so a behavior as written by the user is accepted. ``AbleToScale`` gets the stabilization
    reason when stabilization changed the value, else ``ReadyForNewScale``;
    ``ScalingLimited`` is True when the limits changed the stabilized value.
    """
    complete = scaling.maybe_init_scale_down_stabilization_window(
        scaling.Behavior(
            scaling.generate_hpa_scale_up_rules(behavior.scale_up),
            scaling.generate_hpa_scale_down_rules(behavior.scale_down),
        ),
        config.downscale_stabilization_window_seconds,
    )
    assert complete.scale_up is not None and complete.scale_down is not None
    args = scaling.NormalizationArg(
        scale_up_behavior=complete.scale_up,
        scale_down_behavior=complete.scale_down,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        current_replicas=current_replicas,
        desired_replicas=prenormalized_desired_replicas,
    )
    stabilized = scaling.stabilize_recommendation_with_behaviors(
        args, state.recommendations or (), now=now
    )
    if stabilized.replicas != prenormalized_desired_replicas:
        able = ConditionUpdate(ABLE_TO_SCALE, TRUE, stabilized.reason, stabilized.message)
    else:
        able = _READY_FOR_NEW_SCALE
    args = dataclasses.replace(args, desired_replicas=stabilized.replicas)
    limited = scaling.convert_desired_replicas_with_behavior_rate(
        args, state.scale_up_events, state.scale_down_events, now=now
    )
    status = FALSE if limited.replicas == stabilized.replicas else TRUE
    limit = ConditionUpdate(SCALING_LIMITED, status, limited.reason, limited.message)
    return Normalization(limited.replicas, (able, limit), stabilized.recommendations)


# --- metrics ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricProposal:
    """A valid metric's proposal: replicas, the metric's description for messages
    (e.g. ``"pods metric qps"``), its ``currentMetrics`` entry and its sample time."""

    replicas: int
    metric_name: str
    status: MetricStatus
    timestamp: float = 0.0


@dataclass(frozen=True)
class MetricFailure:
    """A metric that could not be computed.

    ``condition_reason`` is the ``ScalingActive`` reason it proposes (``FailedGetPodsMetric``
    ...), ``condition_message`` its message, ``error`` the error ``computeReplicasForMetric``
    returns and ``events`` the warnings recorded on the way (one, named like the reason).
    """

    condition_reason: str
    condition_message: str
    error: str
    events: tuple[Event, ...]


def _go_label_selector(selector: selectors.LabelSelector | None) -> str:
    """``%+v`` of a ``*metav1.LabelSelector`` as Go prints it (its generated ``String()``)."""
    if selector is None:
        return "nil"
    labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    match_labels = "".join(f"{key}: {labels[key]}," for key in sorted(labels))
    match_expressions = "".join(
        "LabelSelectorRequirement{"
        f"Key:{expression.get('key', '')},"
        f"Operator:{expression.get('operator', '')},"
        f"Values:[{' '.join(expression.get('values') or [])}],}},"
        for expression in expressions
    )
    return (
        f"&LabelSelector{{MatchLabels:map[string]string{{{match_labels}}},"
        f"MatchExpressions:[]LabelSelectorRequirement{{{match_expressions}}},}}"
    )


_LABEL_SELECTOR_OPERATORS = {
    "In": selectors.IN,
    "NotIn": selectors.NOT_IN,
    "Exists": selectors.EXISTS,
    "DoesNotExist": selectors.DOES_NOT_EXIST,
}


def _check_metric_selector(selector: selectors.LabelSelector | None) -> None:
    """``LabelSelectorAsSelector``'s validation; raises ``ValueError`` with its complaint."""
    if selector is None:
        return
    for key, value in (selector.get("matchLabels") or {}).items():
        selectors.Requirement(key, selectors.EQUALS, (value,))
    for expression in selector.get("matchExpressions") or []:
        operator = expression.get("operator", "")
        if operator not in _LABEL_SELECTOR_OPERATORS:
            raise ValueError(f'"{operator}" is not a valid label selector operator')
        selectors.Requirement(
            expression.get("key", ""),
            _LABEL_SELECTOR_OPERATORS[operator],
            tuple(expression.get("values") or ()),
        )


def _failure(reason: str, error: str, returned: str | None = None) -> MetricFailure:
    """``getUnableComputeReplicaCountCondition``: a warning event and the condition it proposes."""
    return MetricFailure(
        condition_reason=reason,
        condition_message=f"the HPA was unable to compute the replica count: {error}",
        error=returned if returned is not None else error,
        events=(Event(WARNING, reason, error),),
    )


def _expect(observed: Observation, kind: type, spec: MetricSpec) -> None:
    if not isinstance(observed, (kind, rc.FetchError)):
        raise TypeError(
            f"a {spec.type} metric needs a {kind.__name__} or FetchError, "
            f"got {type(observed).__name__}"
        )


def compute_replicas_for_metric(
    spec: MetricSpec,
    observed: Observation,
    *,
    spec_replicas: int,
    status_replicas: int,
    pods: Sequence[rc.Pod],
    tolerances: rc.Tolerances,
    now: float,
    readiness: rc.PodReadinessConfig,
    namespace: str = "default",
) -> MetricProposal | MetricFailure:
    """One metric's proposal, or why it failed, dispatching on the metric type and target.

    Which replica count each type uses matters: Resource and Pods metrics and Object/External
    ``Value`` targets get ``spec_replicas`` (the scale's ``spec.replicas``), Object/External
    ``AverageValue`` targets get ``status_replicas``. Raises ``TypeError`` if ``observed`` does
    not fit the metric type (a caller bug, not a metric failure).
    """
    if spec.type == RESOURCE:
        _expect(observed, rc.PodMetrics, spec)
        return _resource_metric(
            spec, observed, spec_replicas, pods, tolerances, now=now, readiness=readiness
        )
    if spec.type == PODS:
        _expect(observed, rc.PodMetrics, spec)
        return _pods_metric(spec, observed, spec_replicas, pods, tolerances)
    if spec.type == OBJECT:
        _expect(observed, rc.ObjectMetricValue, spec)
        return _object_metric(
            spec, observed, spec_replicas, status_replicas, pods, tolerances, namespace
        )
    if spec.type == EXTERNAL:
        _expect(observed, rc.ExternalMetricValues, spec)
        return _external_metric(
            spec, observed, spec_replicas, status_replicas, pods, tolerances, namespace
        )
    error = f'unknown metric source type "{spec.type}"'
    return _failure("InvalidMetricSourceType", error)


def _resource_metric(
    spec: MetricSpec,
    observed: Observation,
    current_replicas: int,
    pods: Sequence[rc.Pod],
    tolerances: rc.Tolerances,
    *,
    now: float,
    readiness: rc.PodReadinessConfig,
) -> MetricProposal | MetricFailure:
    assert isinstance(observed, (rc.PodMetrics, rc.FetchError))
    resource = spec.resource or ""
    target = spec.target
    outer = f"failed to get {resource} resource metric value"
    try:
        if target.average_value_milli is not None:
            try:
                raw = rc.get_raw_resource_replicas(
                    current_replicas,
                    target.average_value_milli,
                    resource,
                    tolerances,
                    pods,
                    observed,
                    now=now,
                    config=readiness,
                )
            except rc.MetricComputationError as error:
                raise rc.MetricComputationError(
                    f"failed to get {resource} usage: {error}"
                ) from error
            current = MetricValueStatus(average_value_milli=raw.usage_milli)
            name, replicas, timestamp = f"{resource} resource", raw.replicas, raw.timestamp
        elif target.average_utilization is None:
            raise rc.MetricComputationError(
                "invalid resource metric source: neither an average utilization target "
                "nor an average value (usage) target was set"
            )
        else:
            try:
                util = rc.get_resource_replicas(
                    current_replicas,
                    target.average_utilization,
                    resource,
                    tolerances,
                    pods,
                    observed,
                    now=now,
                    config=readiness,
                )
            except rc.MetricComputationError as error:
                raise rc.MetricComputationError(
                    f"failed to get {resource} utilization: {error}"
                ) from error
            current = MetricValueStatus(
                average_value_milli=util.raw_average_milli,
                average_utilization=util.utilization_percent,
            )
            name = f"{resource} resource utilization (percentage of request)"
            replicas, timestamp = util.replicas, util.timestamp
    except rc.MetricComputationError as error:
        return _failure("FailedGetResourceMetric", str(error), f"{outer}: {error}")
    status = MetricStatus(RESOURCE, current, resource=resource)
    return MetricProposal(replicas, name, status, timestamp)


def _pods_metric(
    spec: MetricSpec,
    observed: Observation,
    current_replicas: int,
    pods: Sequence[rc.Pod],
    tolerances: rc.Tolerances,
) -> MetricProposal | MetricFailure:
    assert isinstance(observed, (rc.PodMetrics, rc.FetchError))
    metric_name = spec.metric_name or ""
    outer = "failed to get pods metric value"
    try:
        _check_metric_selector(spec.selector)
    except ValueError as error:
        return _failure("FailedGetPodsMetric", str(error), f"{outer}: {error}")
    if spec.target.average_value_milli is None:
        # Upstream dereferences the missing target and panics; fail the metric instead.
        error_text = "invalid pods metric source: no average value target was set"
        return _failure("FailedGetPodsMetric", error_text, f"{outer}: {error_text}")
    try:
        proposal = rc.get_metric_replicas(
            current_replicas,
            spec.target.average_value_milli,
            metric_name,
            tolerances,
            pods,
            observed,
        )
    except rc.MetricComputationError as error:
        return _failure("FailedGetPodsMetric", str(error), f"{outer}: {error}")
    status = MetricStatus(
        PODS,
        MetricValueStatus(average_value_milli=proposal.usage_milli),
        metric_name=metric_name,
        selector=spec.selector,
    )
    return MetricProposal(
        proposal.replicas, f"pods metric {metric_name}", status, proposal.timestamp
    )


def _object_metric(
    spec: MetricSpec,
    observed: Observation,
    spec_replicas: int,
    status_replicas: int,
    pods: Sequence[rc.Pod],
    tolerances: rc.Tolerances,
    namespace: str,
) -> MetricProposal | MetricFailure:
    assert isinstance(observed, (rc.ObjectMetricValue, rc.FetchError))
    metric_name = spec.metric_name or ""
    described = spec.described_object or ObjectReference("", "")
    outer = "failed to get object metric value"
    try:
        _check_metric_selector(spec.selector)
    except ValueError as error:
        return _failure("FailedGetObjectMetric", str(error), f"{outer}: {error}")
    target = spec.target
    if target.type == VALUE and target.value_milli is not None:
        try:
            proposal = rc.get_object_metric_replicas(
                spec_replicas,
                target.value_milli,
                metric_name,
                tolerances,
                pods,
                observed,
                object_kind=described.kind,
                object_name=described.name,
                namespace=namespace,
            )
        except rc.MetricComputationError as error:
            return _failure("FailedGetObjectMetric", str(error), f"{outer}: {error}")
        current = MetricValueStatus(value_milli=proposal.usage_milli)
        name = f"{described.kind} metric {metric_name}"
    elif target.type == AVERAGE_VALUE and target.average_value_milli is not None:
        try:
            proposal = rc.get_object_per_pod_metric_replicas(
                status_replicas,
                target.average_value_milli,
                metric_name,
                tolerances,
                observed,
                object_kind=described.kind,
                object_name=described.name,
                namespace=namespace,
            )
        except rc.MetricComputationError as error:
            inner = f"failed to get {metric_name} object metric: {error}"
            return _failure("FailedGetObjectMetric", str(error), f"{outer}: {inner}")
        current = MetricValueStatus(average_value_milli=proposal.usage_milli)
        # Upstream words this one "external metric"; kept for identical messages.
        name = f"external metric {metric_name}({_go_label_selector(spec.selector)})"
    else:
        error_text = (
            "invalid object metric source: neither a value target nor an average value "
            "target was set"
        )
        return _failure("FailedGetObjectMetric", error_text, f"{outer}: {error_text}")
    status = MetricStatus(
        OBJECT,
        current,
        metric_name=metric_name,
        selector=spec.selector,
        described_object=spec.described_object,
    )
    return MetricProposal(proposal.replicas, name, status, proposal.timestamp)


def _external_metric(
    spec: MetricSpec,
    observed: Observation,
    spec_replicas: int,
    status_replicas: int,
    pods: Sequence[rc.Pod],
    tolerances: rc.Tolerances,
    namespace: str,
) -> MetricProposal | MetricFailure:
    assert isinstance(observed, (rc.ExternalMetricValues, rc.FetchError))
    metric_name = spec.metric_name or ""
    selector_text = _go_label_selector(spec.selector)
    outer = f"failed to get {metric_name} external metric value"
    target = spec.target
    try:
        _check_metric_selector(spec.selector)
    except ValueError as error:
        # Upstream fails inside the replica calculator here, before fetching.
        return _failure("FailedGetExternalMetric", str(error), f"{outer}: {error}")
    if target.average_value_milli is not None:
        try:
            proposal = rc.get_external_per_pod_metric_replicas(
                status_replicas,
                target.average_value_milli,
                metric_name,
                tolerances,
                observed,
                selector_text=selector_text,
                namespace=namespace,
            )
        except rc.MetricComputationError as error:
            inner = f"failed to get {metric_name} external metric: {error}"
            return _failure("FailedGetExternalMetric", str(error), f"{outer}: {inner}")
        current = MetricValueStatus(average_value_milli=proposal.usage_milli)
    elif target.value_milli is not None:
        try:
            proposal = rc.get_external_metric_replicas(
                spec_replicas,
                target.value_milli,
                metric_name,
                tolerances,
                pods,
                observed,
                selector_text=selector_text,
                namespace=namespace,
            )
        except rc.MetricComputationError as error:
            inner = f"failed to get external metric {metric_name}: {error}"
            return _failure("FailedGetExternalMetric", str(error), f"{outer}: {inner}")
        current = MetricValueStatus(value_milli=proposal.usage_milli)
    else:
        error_text = (
            "invalid external metric source: neither a value target nor an average value "
            "target was set"
        )
        return _failure("FailedGetExternalMetric", error_text, f"{outer}: {error_text}")
    status = MetricStatus(EXTERNAL, current, metric_name=metric_name, selector=spec.selector)
    name = f"external metric {metric_name}({selector_text})"
    return MetricProposal(proposal.replicas, name, status, proposal.timestamp)


def validate_and_parse_selector(
    selector: str | None, *, conflicting_hpas: Sequence[str] = (), hpa_name: str = ""
) -> tuple[selectors.Selector | None, ConditionUpdate | None, Event | None, str | None]:
    """Check the scale's selector: present, parseable, and not shared with another HPA.

    Returns ``(selector, None, None, None)`` when fine, else ``(None, condition, event,
    error)`` with ``ScalingActive`` False and reason ``InvalidSelector`` or
    ``AmbiguousSelector``. ``conflicting_hpas`` names the *other* HPAs whose selectors pick
    any of this HPA's pods (the caller knows them; upstream keeps a selector index).
    """
    if not selector:
        message = "selector is required"
        condition = ConditionUpdate(
            SCALING_ACTIVE, FALSE, "InvalidSelector", "the HPA target's scale is missing a selector"
        )
        return None, condition, Event(WARNING, "SelectorRequired", message), message
    try:
        parsed = selectors.parse(selector)
    except selectors.InvalidSelector as error:
        message = (
            f"couldn't convert selector into a corresponding internal selector object: {error}"
        )
        condition = ConditionUpdate(SCALING_ACTIVE, FALSE, "InvalidSelector", message)
        return None, condition, Event(WARNING, "InvalidSelector", message), message
    if conflicting_hpas:
        names = " ".join(sorted({hpa_name, *conflicting_hpas}))
        message = f"pods by selector {selector} are controlled by multiple HPAs: [{names}]"
        condition = ConditionUpdate(SCALING_ACTIVE, FALSE, "AmbiguousSelector", message)
        return None, condition, Event(WARNING, "AmbiguousSelector", message), message
    return parsed, None, None, None


@dataclass(frozen=True)
class MetricsOutcome:
    """What :func:`compute_replicas_for_metrics` decided.

    ``replicas`` is ``None`` when the pass cannot scale (every metric failed, some failed
    while the valid ones want a scale-down, or the selector is bad); then ``condition`` is the
    ``ScalingActive`` failure to set and ``error`` says why. Otherwise ``replicas`` is the
    highest proposal, ``metric_name`` its description, ``condition`` is
    ``ScalingActive=True/ValidMetricFound`` and ``error`` is set when some metrics failed
    anyway. ``statuses`` has one entry per metric (``None`` where it failed), or is empty when
    the selector was rejected.
    """

    replicas: int | None
    metric_name: str
    statuses: tuple[MetricStatus | None, ...]
    condition: ConditionUpdate
    events: tuple[Event, ...]
    error: str | None
    timestamp: float = 0.0


def compute_replicas_for_metrics(
    metric_specs: Sequence[MetricSpec],
    observations: Sequence[Observation],
    scale: Scale,
    pods: Sequence[rc.Pod],
    *,
    tolerances: rc.Tolerances,
    now: float,
    readiness: rc.PodReadinessConfig,
    namespace: str = "default",
    hpa_name: str = "",
    conflicting_hpas: Sequence[str] = (),
) -> MetricsOutcome:
    """The highest proposal over all metrics; failed metrics only block scaling down.

    ``observations[i]`` is what was fetched for ``metric_specs[i]``. Ties keep the first
    metric. If every metric failed, or some failed and the best valid proposal is below
    ``scale.spec_replicas``, the first failure's condition wins and nothing scales (no
    scale-down on partial data).
    """
    if len(observations) != len(metric_specs):
        raise ValueError(
            f"{len(metric_specs)} metrics but {len(observations)} observations were given"
        )
    _, bad_selector, selector_event, selector_error = validate_and_parse_selector(
        scale.selector, conflicting_hpas=conflicting_hpas, hpa_name=hpa_name
    )
    if bad_selector is not None:
        assert selector_event is not None
        return MetricsOutcome(None, "", (), bad_selector, (selector_event,), selector_error)

    replicas = 0
    metric_name = ""
    timestamp = 0.0
    statuses: list[MetricStatus | None] = []
    events: list[Event] = []
    first_failure: MetricFailure | None = None
    invalid = 0
    for spec, observed in zip(metric_specs, observations, strict=True):
        result = compute_replicas_for_metric(
            spec,
            observed,
            spec_replicas=scale.spec_replicas,
            status_replicas=scale.status_replicas,
            pods=pods,
            tolerances=tolerances,
            now=now,
            readiness=readiness,
            namespace=namespace,
        )
        if isinstance(result, MetricFailure):
            statuses.append(None)
            events.extend(result.events)
            first_failure = first_failure or result
            invalid += 1
            continue
        statuses.append(result.status)
        if replicas == 0 or result.replicas > replicas:
            replicas, metric_name, timestamp = result.replicas, result.metric_name, result.timestamp

    error = None
    if first_failure is not None:
        error = (
            f"invalid metrics ({invalid} invalid out of {len(metric_specs)}), "
            f"first error is: {first_failure.error}"
        )
    if invalid >= len(metric_specs) or (invalid > 0 and replicas < scale.spec_replicas):
        condition = (
            ConditionUpdate(
                SCALING_ACTIVE,
                FALSE,
                first_failure.condition_reason,
                first_failure.condition_message,
            )
            if first_failure is not None
            else ConditionUpdate(SCALING_ACTIVE, FALSE, "", "")
        )
        return MetricsOutcome(None, "", tuple(statuses), condition, tuple(events), error)
    condition = ConditionUpdate(
        SCALING_ACTIVE,
        TRUE,
        "ValidMetricFound",
        f"the HPA was able to successfully calculate a replica count from {metric_name}",
    )
    return MetricsOutcome(
        replicas, metric_name, tuple(statuses), condition, tuple(events), error, timestamp
    )


# --- one pass --------------------------------------------------------------------------------


def reconcile(
    hpa: HorizontalPodAutoscaler,
    scale: Scale | rc.FetchError,
    pods: Sequence[rc.Pod],
    observations: Sequence[Observation],
    state: HpaState,
    *,
    now: float,
    config: ControllerConfig = ControllerConfig(),
    conflicting_hpas: Sequence[str] = (),
    scale_update_error: str | None = None,
) -> ReconcileResult:
    """One ``reconcileAutoscaler`` pass: desired replicas, status, conditions, events, state.

    Inputs: the HPA (spec as written, previous status), the target's scale or the error
    fetching it, the pods the scale selector lists, one observation per metric of the
    *defaulted* spec (an empty ``metrics`` becomes CPU at 80 %, needing one observation), the
    controller memory from the previous pass, the clock and the controller flags.
    ``conflicting_hpas`` names other HPAs whose selectors also pick these pods.

    The pass: record the current size as first recommendation for a new HPA; with the target
    at 0 replicas and ``minReplicas`` ≠ 0 scaling is disabled; above ``max`` or below ``min``
    the size is clamped without looking at metrics; otherwise the metrics' highest proposal is
    normalized (legacy path without ``behavior``, policies and two-sided stabilization with).
    A metric failure that blocks scaling leaves ``desiredReplicas`` as it was and emits
    ``FailedComputeMetricsReplicas``.

    Applying the scale is the caller's job. When ``rescale`` comes back True and the update
    then fails, call again with the same inputs and ``scale_update_error`` set: the result
    then describes the failed attempt (``FailedUpdateScale``, a ``FailedRescale`` event, no
    scale event stored, ``desiredReplicas`` unchanged).
    """
    if isinstance(scale, rc.FetchError):
        return _scale_unavailable(hpa, scale, state, now=now)
    conditions = set_condition_in_list(
        hpa.status.conditions,
        ABLE_TO_SCALE,
        TRUE,
        "SucceededGetScale",
        "the HPA controller was able to get the target's current scale",
        now=now,
    )
    if state.recommendations is None:
        first = scaling.TimestampedRecommendation(scale.spec_replicas, now)
        state = dataclasses.replace(state, recommendations=(first,))
    spec = set_defaults_horizontal_pod_autoscaler(hpa.spec)
    decided = _decide(
        hpa,
        spec,
        scale,
        pods,
        observations,
        state,
        conditions,
        now=now,
        config=config,
        conflicting_hpas=conflicting_hpas,
    )
    if isinstance(decided, ReconcileResult):
        return decided
    return _finish(hpa, spec, scale, decided, now=now, scale_update_error=scale_update_error)


@dataclass(frozen=True)
class _Decision:
    """Where a pass stands once the desired size is known, before the scale is written."""

    desired: int
    rescale: bool
    reason: str
    conditions: tuple[Condition, ...]
    statuses: tuple[MetricStatus | None, ...]
    events: tuple[Event, ...]
    state: HpaState
    error: str | None


def _scale_unavailable(
    hpa: HorizontalPodAutoscaler, scale: rc.FetchError, state: HpaState, *, now: float
) -> ReconcileResult:
    """The pass ends at once: AbleToScale False/``FailedGetScale``, status otherwise kept."""
    conditions = set_condition_in_list(
        hpa.status.conditions,
        ABLE_TO_SCALE,
        FALSE,
        "FailedGetScale",
        f"the HPA controller was unable to get the target's current scale: {scale.message}",
        now=now,
    )
    status = dataclasses.replace(hpa.status, conditions=conditions)
    return ReconcileResult(
        rescale=False,
        status=status,
        state=state,
        events=(Event(WARNING, "FailedGetScale", scale.message),),
        status_changed=status != hpa.status,
        error=f"failed to query scale subresource for {_reference(hpa)}: {scale.message}",
    )


def _decide(
    hpa: HorizontalPodAutoscaler,
    spec: HpaSpec,
    scale: Scale,
    pods: Sequence[rc.Pod],
    observations: Sequence[Observation],
    state: HpaState,
    conditions: tuple[Condition, ...],
    *,
    now: float,
    config: ControllerConfig,
    conflicting_hpas: Sequence[str],
) -> _Decision | ReconcileResult:
    """The desired size: disabled, clamped into [min, max], or from metrics and normalized.

    Returns the finished result instead when the metrics cannot support any decision.
    """
    current = scale.spec_replicas
    min_replicas = spec.min_replicas if spec.min_replicas is not None else 1
    if current == 0 and min_replicas != 0:
        conditions = set_condition_in_list(
            conditions,
            SCALING_ACTIVE,
            FALSE,
            "ScalingDisabled",
            "scaling is disabled since the replica count of the target is zero",
            now=now,
        )
        return _Decision(0, False, "", conditions, (), (), state, None)
    if current > spec.max_replicas:
        reason = "Current number of replicas above Spec.MaxReplicas"
        return _Decision(spec.max_replicas, True, reason, conditions, (), (), state, None)
    if current < min_replicas:
        reason = "Current number of replicas below Spec.MinReplicas"
        return _Decision(min_replicas, True, reason, conditions, (), (), state, None)

    outcome = compute_replicas_for_metrics(
        spec.metrics,
        observations,
        scale,
        pods,
        tolerances=tolerances_for_hpa(spec.behavior, config),
        now=now,
        readiness=config.readiness(),
        namespace=hpa.namespace,
        hpa_name=hpa.name,
        conflicting_hpas=conflicting_hpas,
    )
    conditions = _apply(conditions, (outcome.condition,), now)
    if outcome.replicas is None:
        message = outcome.error or ""
        status = HpaStatus(
            current_replicas=current,
            desired_replicas=hpa.status.desired_replicas,
            current_metrics=outcome.statuses,
            conditions=conditions,
            last_scale_time=hpa.status.last_scale_time,
        )
        return ReconcileResult(
            rescale=False,
            status=status,
            state=state,
            events=(*outcome.events, Event(WARNING, "FailedComputeMetricsReplicas", message)),
            status_changed=status != hpa.status,
            error=(
                "failed to compute desired number of replicas based on listed metrics "
                f"for {_reference(hpa)}: {message}"
            ),
        )

    desired = max(outcome.replicas, 0)
    rescale_metric = outcome.metric_name if outcome.replicas > 0 else ""
    reason = ""
    if desired > current:
        reason = f"{rescale_metric} above target"
    if desired < current:
        reason = "All metrics below target"
    if spec.behavior is None:
        normalized = normalize_desired_replicas(
            state.recommendations or (),
            current,
            desired,
            min_replicas,
            spec.max_replicas,
            config=config,
            now=now,
        )
    else:
        normalized = normalize_desired_replicas_with_behaviors(
            spec.behavior,
            state,
            current,
            desired,
            min_replicas,
            spec.max_replicas,
            config=config,
            now=now,
        )
    return _Decision(
        desired=normalized.replicas,
        rescale=normalized.replicas != current,
        reason=reason,
        conditions=_apply(conditions, normalized.conditions, now),
        statuses=outcome.statuses,
        events=outcome.events,
        state=dataclasses.replace(state, recommendations=normalized.recommendations),
        error=outcome.error,
    )


def _finish(
    hpa: HorizontalPodAutoscaler,
    spec: HpaSpec,
    scale: Scale,
    decision: _Decision,
    *,
    now: float,
    scale_update_error: str | None,
) -> ReconcileResult:
    """Write the scale (or report that writing it failed) and build the new status."""
    current = scale.spec_replicas
    previous = hpa.status
    conditions = decision.conditions
    desired = decision.desired
    if not decision.rescale:
        status = HpaStatus(
            current, current, decision.statuses, conditions, previous.last_scale_time
        )
        return ReconcileResult(
            False, status, decision.state, decision.events, status != previous, decision.error
        )
    if scale_update_error is not None:
        conditions = set_condition_in_list(
            conditions,
            ABLE_TO_SCALE,
            FALSE,
            "FailedUpdateScale",
            f"the HPA controller was unable to update the target scale: {scale_update_error}",
            now=now,
        )
        event = Event(
            WARNING,
            "FailedRescale",
            f"New size: {desired}; reason: {decision.reason}; error: {scale_update_error}",
        )
        status = HpaStatus(
            current,
            previous.desired_replicas,
            decision.statuses,
            conditions,
            previous.last_scale_time,
        )
        return ReconcileResult(
            rescale=False,
            status=status,
            state=decision.state,
            events=(*decision.events, event),
            status_changed=status != previous,
            error=f"failed to rescale {_reference(hpa)}: {scale_update_error}",
        )
    conditions = set_condition_in_list(
        conditions,
        ABLE_TO_SCALE,
        TRUE,
        "SucceededRescale",
        f"the HPA controller was able to update the target scale to {desired}",
        now=now,
    )
    event = Event(NORMAL, "SuccessfulRescale", f"New size: {desired}; reason: {decision.reason}")
    up, down = scaling.store_scale_event(
        spec.behavior,
        decision.state.scale_up_events,
        decision.state.scale_down_events,
        current,
        desired,
        now=now,
    )
    state = dataclasses.replace(decision.state, scale_up_events=up, scale_down_events=down)
    status = HpaStatus(current, desired, decision.statuses, conditions, now)
    return ReconcileResult(
        rescale=True,
        status=status,
        state=state,
        events=(*decision.events, event),
        status_changed=status != previous,
        error=decision.error,
    )


def _reference(hpa: HorizontalPodAutoscaler) -> str:
    """``Kind/namespace/name`` of the scale target, as upstream's error messages name it."""
    ref = hpa.scale_target_ref or ObjectReference("", "")
    return f"{ref.kind}/{hpa.namespace}/{ref.name}"
