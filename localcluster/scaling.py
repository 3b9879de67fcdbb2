"""Scaling behavior: API defaults, stabilization, rate limits and scale events.

Role: the normalization arithmetic of the Kubernetes HPA controller (``horizontal.go``) and the
``behavior`` defaulting of the ``autoscaling/v2`` API (``pkg/apis/autoscaling/v2/defaults.go``),
as pure functions over frozen dataclasses. :mod:`localcluster.hpa` composes them into the two
normalization paths and sets the conditions; every function here is named after its upstream
counterpart in snake_case (``stabilizeRecommendationWithBehaviors`` →
:func:`stabilize_recommendation_with_behaviors`, ``GenerateHPAScaleUpRules`` →
:func:`generate_hpa_scale_up_rules`, ...).

Two paths exist upstream and both are kept:

* **legacy** (``spec.behavior`` unset): :func:`stabilize_recommendation` takes the highest
  recommendation of the downscale window, then :func:`convert_desired_replicas_with_rules`
  clamps into ``[min, min(max, max(factor * current, minimum))]``; no scale events.
* **behavior**: :func:`stabilize_recommendation_with_behaviors` clamps the current size between
  the lowest recent recommendation (scale-up window) and the highest (scale-down window), then
  :func:`convert_desired_replicas_with_behavior_rate` applies the policies' rate limits, which
  count the rescales of each policy's period (:func:`store_scale_event`), and min/max.

Time is seconds on the caller's clock, passed as ``now``. "Younger than N seconds" means a
timestamp strictly after ``now - N`` (Go's ``After``); "older" strictly before. So a record
exactly N seconds old is outside a behavior window or policy period and is not reusable
either, while the legacy window keeps it (it drops only strictly older samples).

Pure and standard-library only: no I/O, no clock reads, no logging.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "Behavior",
    "LimitedReplicas",
    "NormalizationArg",
    "ScaleEvent",
    "ScalingPolicy",
    "ScalingRules",
    "Stabilization",
    "TimestampedRecommendation",
    "calculate_scale_down_limit_with_behaviors",
    "calculate_scale_up_limit",
    "calculate_scale_up_limit_with_scaling_rules",
    "convert_desired_replicas_with_behavior_rate",
    "convert_desired_replicas_with_rules",
    "generate_hpa_scale_down_rules",
    "generate_hpa_scale_up_rules",
    "get_longest_policy_period",
    "get_replicas_change_per_period",
    "mark_scale_events_outdated",
    "maybe_init_scale_down_stabilization_window",
    "stabilize_recommendation",
    "stabilize_recommendation_with_behaviors",
    "store_scale_event",
]

INT32_MAX = 2**31 - 1
INT32_MIN = -(2**31)

# Policy types and how to choose among policies (``selectPolicy``).
PODS_POLICY = "Pods"
PERCENT_POLICY = "Percent"
SELECT_MAX = "Max"
SELECT_MIN = "Min"
SELECT_DISABLED = "Disabled"


# --- spec and memory -------------------------------------------------------------------------


@dataclass(frozen=True)
class ScalingPolicy:
    """``HPAScalingPolicy``: at most ``value`` pods (``Pods``) or percent (``Percent``) of
    change within any ``period_seconds``."""

    type: str
    value: int
    period_seconds: int


@dataclass(frozen=True)
class ScalingRules:
    """``HPAScalingRules`` for one direction; ``None`` fields are filled by API defaulting.

    ``tolerance`` (v1.33+) overrides the controller's tolerance for this direction when the
    ``HPAConfigurableTolerance`` gate is on; it is the Quantity's float value (``0.05``).
    ``policies=()`` is kept as an empty list (no scaling that way), unlike ``None``.
    """

    stabilization_window_seconds: int | None = None
    select_policy: str | None = None
    policies: tuple[ScalingPolicy, ...] | None = None
    tolerance: float | None = None


@dataclass(frozen=True)
class Behavior:
    """``spec.behavior``; a ``None`` direction takes the defaults of that direction."""

    scale_up: ScalingRules | None = None
    scale_down: ScalingRules | None = None


@dataclass(frozen=True)
class TimestampedRecommendation:
    """One unstabilized recommendation the controller remembers, with when it was made."""

    replicas: int
    timestamp: float


@dataclass(frozen=True)
class ScaleEvent:
    """One rescale the controller remembers (``behavior`` only): ``|new - old|`` and when.

    ``outdated`` marks a slot older than the direction's longest policy period; the flag
    sticks and the next event of that direction reuses the last such slot.
    """

    replica_change: int
    timestamp: float
    outdated: bool = False


# --- API defaulting --------------------------------------------------------------------------

_DEFAULT_SCALE_UP_RULES = ScalingRules(
    stabilization_window_seconds=0,
    select_policy=SELECT_MAX,
    policies=(ScalingPolicy(PODS_POLICY, 4, 15), ScalingPolicy(PERCENT_POLICY, 100, 15)),
)


_DEFAULT_SCALE_DOWN_RULES = ScalingRules(
    stabilization_window_seconds=None,  # the controller's downscale window, filled at sync time
    select_policy=SELECT_MAX,
    policies=(ScalingPolicy(PERCENT_POLICY, 100, 15),),
)


def _copy_scaling_rules(source: ScalingRules | None, defaults: ScalingRules) -> ScalingRules:
    """Every field set in ``source`` wins; a ``policies`` list replaces the defaults whole."""
    if source is None:
        return defaults
    return ScalingRules(
        stabilization_window_seconds=(
            source.stabilization_window_seconds
            if source.stabilization_window_seconds is not None
            else defaults.stabilization_window_seconds
        ),
        select_policy=source.select_policy or defaults.select_policy,
        policies=source.policies if source.policies is not None else defaults.policies,
        tolerance=source.tolerance if source.tolerance is not None else defaults.tolerance,
    )


def generate_hpa_scale_up_rules(rules: ScalingRules | None) -> ScalingRules:
    """Scale-up rules with defaults filled: no window, ``Max`` of +4 pods / +100 % per 15 s."""
    return _copy_scaling_rules(rules, _DEFAULT_SCALE_UP_RULES)


def generate_hpa_scale_down_rules(rules: ScalingRules | None) -> ScalingRules:
    """Scale-down rules with defaults filled: ``Max`` of -100 % per 15 s.

    The window stays ``None`` when unset: the controller fills it from its own flag
    (:func:`maybe_init_scale_down_stabilization_window`).
    """
    return _copy_scaling_rules(rules, _DEFAULT_SCALE_DOWN_RULES)


def maybe_init_scale_down_stabilization_window(
    behavior: Behavior, downscale_stabilization_window_seconds: int
) -> Behavior:
    """Fill an unset ``scaleDown.stabilizationWindowSeconds`` from the controller flag."""
    down = behavior.scale_down
    if down is None or down.stabilization_window_seconds is not None:
        return behavior
    window = int(downscale_stabilization_window_seconds)
    return dataclasses.replace(
        behavior, scale_down=dataclasses.replace(down, stabilization_window_seconds=window)
    )


# --- legacy path (no behavior) ---------------------------------------------------------------


@dataclass(frozen=True)
class LimitedReplicas:
    """A replica count after limits, with the ``ScalingLimited`` reason and message."""

    replicas: int
    reason: str
    message: str


@dataclass(frozen=True)
class Stabilization:
    """A stabilized recommendation and the recommendation history to keep.

    ``reason``/``message`` are the ``AbleToScale`` wording to use when the stabilized value
    differs from the input (empty for the legacy path, whose caller words it).
    """

    replicas: int
    recommendations: tuple[TimestampedRecommendation, ...]
    reason: str = ""
    message: str = ""


_WITHIN_RANGE = ("DesiredWithinRange", "the desired count is within the acceptable range")


_SCALE_UP_LIMIT = (
    "ScaleUpLimit",
    "the desired replica count is increasing faster than the maximum scale rate",
)


_SCALE_DOWN_LIMIT = (
    "ScaleDownLimit",
    "the desired replica count is decreasing faster than the maximum scale rate",
)


_TOO_MANY = ("TooManyReplicas", "the desired replica count is more than the maximum replica count")


_TOO_FEW = ("TooFewReplicas", "the desired replica count is less than the minimum replica count")


def stabilize_recommendation(
    recommendations: Sequence[TimestampedRecommendation],
    prenormalized_desired_replicas: int,
    downscale_stabilization_window_seconds: float,
    *,
    now: float,
) -> Stabilization:
    """Legacy stabilization: the highest recommendation of the window, including this one.

    Recommendations strictly older than the window are ignored; this one is then stored in the
    last such slot, or appended when none is that old.
    """
    cutoff = now - downscale_stabilization_window_seconds
    highest = prenormalized_desired_replicas
    old_index: int | None = None
    for index, recommendation in enumerate(recommendations):
        if recommendation.timestamp < cutoff:
            old_index = index
        elif recommendation.replicas > highest:
            highest = recommendation.replicas
    return Stabilization(
        highest, _record(recommendations, old_index, prenormalized_desired_replicas, now)
    )


def _record(
    recommendations: Sequence[TimestampedRecommendation],
    old_index: int | None,
    replicas: int,
    now: float,
) -> tuple[TimestampedRecommendation, ...]:
    stored = list(recommendations)
    fresh = TimestampedRecommendation(replicas, now)
    if old_index is None:
        stored.append(fresh)
    else:
        stored[old_index] = fresh
    return tuple(stored)


def calculate_scale_up_limit(
    current_replicas: int, scale_up_limit_factor: float = 2.0, scale_up_limit_minimum: float = 4.0
) -> int:
    """Legacy growth cap per pass: ``trunc(max(factor * current, minimum))``."""
    return int(max(scale_up_limit_factor * float(current_replicas), scale_up_limit_minimum))


def convert_desired_replicas_with_rules(
    current_replicas: int,
    desired_replicas: int,
    min_replicas: int,
    max_replicas: int,
    *,
    scale_up_limit_factor: float = 2.0,
    scale_up_limit_minimum: float = 4.0,
) -> LimitedReplicas:
    """Legacy limits: clamp into ``[min, min(max, scale-up limit)]``.

    The reason says which bound bit: ``TooFewReplicas``, ``ScaleUpLimit`` (the growth cap is
    below ``max``), ``TooManyReplicas``, else ``DesiredWithinRange``.
    """
    scale_up_limit = calculate_scale_up_limit(
        current_replicas, scale_up_limit_factor, scale_up_limit_minimum
    )
    if max_replicas > scale_up_limit:
        maximum, limiting = scale_up_limit, _SCALE_UP_LIMIT
    else:
        maximum, limiting = max_replicas, _TOO_MANY
    if desired_replicas < min_replicas:
        return LimitedReplicas(min_replicas, *_TOO_FEW)
    if desired_replicas > maximum:
        return LimitedReplicas(maximum, *limiting)
    return LimitedReplicas(desired_replicas, *_WITHIN_RANGE)


# --- behavior path ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NormalizationArg:
    """What the behavior path works on; both rules fully defaulted (windows set)."""

    scale_up_behavior: ScalingRules
    scale_down_behavior: ScalingRules
    min_replicas: int
    max_replicas: int
    current_replicas: int
    desired_replicas: int


def stabilize_recommendation_with_behaviors(
    args: NormalizationArg,
    recommendations: Sequence[TimestampedRecommendation],
    *,
    now: float,
) -> Stabilization:
    """Two-sided stabilization: clamp the *current* size into ``[up, down]``.

    ``up`` is the lowest recommendation (this one included) younger than the scale-up window,
    ``down`` the highest younger than the scale-down window, so a scale-up goes only as high as
    the lowest recent recommendation and a scale-down only as low as the highest. The
    unstabilized recommendation is stored in the last slot older than both windows, or
    appended. The reason is ``ScaleUpStabilized`` when desired ≥ current, else
    ``ScaleDownStabilized`` (used by the caller only if the value changed).
    """
    up_window = args.scale_up_behavior.stabilization_window_seconds or 0
    down_window = args.scale_down_behavior.stabilization_window_seconds or 0
    up_cutoff = now - up_window
    down_cutoff = now - down_window
    up_recommendation = args.desired_replicas
    down_recommendation = args.desired_replicas
    old_index: int | None = None
    for index, recommendation in enumerate(recommendations):
        if recommendation.timestamp > up_cutoff:
            up_recommendation = min(recommendation.replicas, up_recommendation)
        if recommendation.timestamp > down_cutoff:
            down_recommendation = max(recommendation.replicas, down_recommendation)
        if recommendation.timestamp < up_cutoff and recommendation.timestamp < down_cutoff:
            old_index = index

    stabilized = args.current_replicas
    stabilized = max(stabilized, up_recommendation)
    stabilized = min(stabilized, down_recommendation)

    stored = _record(recommendations, old_index, args.desired_replicas, now)
    if args.desired_replicas >= args.current_replicas:
        reason = "ScaleUpStabilized"
        message = (
            "recent recommendations were lower than current one, "
            "applying the lowest recent recommendation"
        )
    else:
        reason = "ScaleDownStabilized"
        message = (
            "recent recommendations were higher than current one, "
            "applying the highest recent recommendation"
        )
    return Stabilization(stabilized, stored, reason, message)


def get_replicas_change_per_period(
    period_seconds: float, scale_events: Sequence[ScaleEvent], *, now: float
) -> int:
    """Sum of the changes recorded strictly within the last ``period_seconds``."""
    cutoff = now - period_seconds
    return sum(event.replica_change for event in scale_events if event.timestamp > cutoff)


def _period_start_replicas(
    current_replicas: int,
    policy: ScalingPolicy,
    scale_up_events: Sequence[ScaleEvent],
    scale_down_events: Sequence[ScaleEvent],
    now: float,
) -> int:
    """The size at the start of the policy's period, undoing the period's ups and downs."""
    added = get_replicas_change_per_period(policy.period_seconds, scale_up_events, now=now)
    deleted = get_replicas_change_per_period(policy.period_seconds, scale_down_events, now=now)
    return current_replicas - added + deleted


def calculate_scale_up_limit_with_scaling_rules(
    current_replicas: int,
    scale_up_events: Sequence[ScaleEvent],
    scale_down_events: Sequence[ScaleEvent],
    scaling_rules: ScalingRules,
    *,
    now: float,
) -> int:
    """The highest size the scale-up policies allow now.

    Per policy, from the period's start size: ``Pods`` adds ``value``, ``Percent`` multiplies
    by ``1 + value/100`` rounding up. ``Max`` takes the most permissive policy, ``Min`` the
    least, ``Disabled`` returns the current size. No policies: int32 min (``Max``) or int32
    max (``Min``), as upstream's fold starts there.
    """
    if scaling_rules.select_policy == SELECT_DISABLED:
        return current_replicas
    pick_min = scaling_rules.select_policy == SELECT_MIN
    result = INT32_MAX if pick_min else INT32_MIN
    for policy in scaling_rules.policies or ():
        start = _period_start_replicas(
            current_replicas, policy, scale_up_events, scale_down_events, now
        )
        if policy.type == PODS_POLICY:
            proposed = start + policy.value
        elif policy.type == PERCENT_POLICY:
            proposed = math.ceil(float(start) * (1 + float(policy.value) / 100))
        else:
            proposed = 0  # upstream leaves its variable unset (zero) for an unknown type
        result = min(result, proposed) if pick_min else max(result, proposed)
    return result


def calculate_scale_down_limit_with_behaviors(
    current_replicas: int,
    scale_up_events: Sequence[ScaleEvent],
    scale_down_events: Sequence[ScaleEvent],
    scaling_rules: ScalingRules,
    *,
    now: float,
) -> int:
    """The lowest size the scale-down policies allow now.

    Per policy, from the period's start size: ``Pods`` removes ``value``, ``Percent``
    multiplies by ``1 - value/100`` truncating (not rounding up). ``Max`` (largest change)
    takes the lowest proposal, ``Min`` the highest, ``Disabled`` returns the current size.
    """
    if scaling_rules.select_policy == SELECT_DISABLED:
        return current_replicas
    pick_max = scaling_rules.select_policy == SELECT_MIN
    result = INT32_MIN if pick_max else INT32_MAX
    for policy in scaling_rules.policies or ():
        start = _period_start_replicas(
            current_replicas, policy, scale_up_events, scale_down_events, now
        )
        if policy.type == PODS_POLICY:
            proposed = start - policy.value
        elif policy.type == PERCENT_POLICY:
            proposed = int(float(start) * (1 - float(policy.value) / 100))
        else:
            proposed = 0
        result = max(result, proposed) if pick_max else min(result, proposed)
    return result


def convert_desired_replicas_with_behavior_rate(
    args: NormalizationArg,
    scale_up_events: Sequence[ScaleEvent],
    scale_down_events: Sequence[ScaleEvent],
    *,
    now: float,
) -> LimitedReplicas:
    """Apply the policies' rate limits and ``min``/``max`` to a stabilized recommendation.

    A scale-up limit below the current size is raised to it (and a scale-down limit above it
    lowered), so past events never force a move the other way. Reasons: ``ScaleUpLimit`` /
    ``ScaleDownLimit`` when the rate limit is the binding bound, ``TooManyReplicas`` /
    ``TooFewReplicas`` when ``max``/``min`` is, else ``DesiredWithinRange``.
    """
    if args.desired_replicas > args.current_replicas:
        limit = calculate_scale_up_limit_with_scaling_rules(
            args.current_replicas,
            scale_up_events,
            scale_down_events,
            args.scale_up_behavior,
            now=now,
        )
        limit = max(limit, args.current_replicas)
        if args.max_replicas > limit:
            maximum, limiting = limit, _SCALE_UP_LIMIT
        else:
            maximum, limiting = args.max_replicas, _TOO_MANY
        if args.desired_replicas > maximum:
            return LimitedReplicas(maximum, *limiting)
    elif args.desired_replicas < args.current_replicas:
        limit = calculate_scale_down_limit_with_behaviors(
            args.current_replicas,
            scale_up_events,
            scale_down_events,
            args.scale_down_behavior,
            now=now,
        )
        limit = min(limit, args.current_replicas)
        if args.min_replicas < limit:
            minimum, limiting = limit, _SCALE_DOWN_LIMIT
        else:
            minimum, limiting = args.min_replicas, _TOO_FEW
        if args.desired_replicas < minimum:
            return LimitedReplicas(minimum, *limiting)
    return LimitedReplicas(args.desired_replicas, *_WITHIN_RANGE)


# --- scale events ----------------------------------------------------------------------------


def get_longest_policy_period(scaling_rules: ScalingRules | None) -> int:
    """The longest ``periodSeconds`` among the rules' policies (0 without policies)."""
    if scaling_rules is None:
        return 0
    return max((policy.period_seconds for policy in scaling_rules.policies or ()), default=0)


def mark_scale_events_outdated(
    scale_events: Sequence[ScaleEvent], longest_policy_period: float, *, now: float
) -> tuple[ScaleEvent, ...]:
    """Flag events strictly older than the longest policy period as reusable (flags stick)."""
    cutoff = now - longest_policy_period
    return tuple(
        dataclasses.replace(event, outdated=True) if event.timestamp < cutoff else event
        for event in scale_events
    )


def _store_one(
    events: Sequence[ScaleEvent], rules: ScalingRules | None, change: int, now: float
) -> tuple[ScaleEvent, ...]:
    marked = list(mark_scale_events_outdated(events, get_longest_policy_period(rules), now=now))
    fresh = ScaleEvent(change, now, outdated=False)
    outdated = [index for index, event in enumerate(marked) if event.outdated]
    if outdated:
        marked[outdated[-1]] = fresh
    else:
        marked.append(fresh)
    return tuple(marked)


def store_scale_event(
    behavior: Behavior | None,
    scale_up_events: Sequence[ScaleEvent],
    scale_down_events: Sequence[ScaleEvent],
    prev_replicas: int,
    new_replicas: int,
    *,
    now: float,
) -> tuple[tuple[ScaleEvent, ...], tuple[ScaleEvent, ...]]:
    """Record a rescale in its direction's event list; returns ``(up, down)`` events.

    Without ``behavior`` nothing is stored (the legacy path never reads events). Events older
    than the direction's longest policy period are flagged outdated first; the new event takes
    the last outdated slot, or is appended.
    """
    up, down = tuple(scale_up_events), tuple(scale_down_events)
    if behavior is None:
        return up, down
    if new_replicas > prev_replicas:
        rules = generate_hpa_scale_up_rules(behavior.scale_up)
        return _store_one(up, rules, new_replicas - prev_replicas, now), down
    rules = generate_hpa_scale_down_rules(behavior.scale_down)
    return up, _store_one(down, rules, prev_replicas - new_replicas, now)
