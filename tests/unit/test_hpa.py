"""Our own HPA cases, derived by hand from the algorithm notes (``hpa-algorithm.md``).

Two parts. ``hpa_cases_own.json`` holds table cases in the public schema (tolerance edges,
missing/unready/pending/deleting pods, multiple and failed metrics, both normalization paths,
policies and ``selectPolicy``, behavior tolerance, condition reasons), replayed through the same
thin adapter as the public cases; every expected number there was worked out from the algorithm
text and is explained in the case's ``summary``. The tests below cover what that schema cannot
express: events and messages, ``currentMetrics`` entries, state carried across passes, condition
transition times, and a few Go arithmetic details.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from localcluster import hpa, scaling
from localcluster import replica_calculator as rc
from tests.unit.test_hpa_public_cases import check, load_cases

OWN_CASES = load_cases(Path(__file__).with_name("hpa_cases_own.json"))
NOW = 1_000_000.0


@pytest.mark.parametrize("case", OWN_CASES, ids=[case["id"] for case in OWN_CASES])
def test_own_case(case: dict[str, Any]) -> None:
    check(case)


# --- helpers ---------------------------------------------------------------------------------


def pods(count: int, *, cpu: int | None = 1000) -> tuple[rc.Pod, ...]:
    return tuple(rc.Pod(f"pod-{i}", cpu_request_milli=cpu) for i in range(count))


def samples(*values: int, timestamp: float = NOW) -> rc.PodMetrics:
    return rc.PodMetrics(
        tuple(rc.PodMetricSample(f"pod-{i}", v, timestamp) for i, v in enumerate(values))
    )


QPS = hpa.MetricSpec(
    type=hpa.PODS, metric_name="qps", target=hpa.MetricTarget("AverageValue", None, 10000)
)
CPU_50 = hpa.MetricSpec(
    type=hpa.RESOURCE, resource="cpu", target=hpa.MetricTarget("Utilization", 50)
)
QUEUE = hpa.MetricSpec(
    type=hpa.EXTERNAL,
    metric_name="queue",
    selector={"matchLabels": {"q": "a"}},
    target=hpa.MetricTarget("Value", value_milli=1000),
)
SCALE_3 = hpa.Scale(3, 3, "app=test")


def autoscaler(
    *metrics: hpa.MetricSpec,
    min_replicas: int = 1,
    max_replicas: int = 10,
    behavior: scaling.Behavior | None = None,
    status: hpa.HpaStatus | None = None,
) -> hpa.HorizontalPodAutoscaler:
    return hpa.HorizontalPodAutoscaler(
        name="web",
        namespace="shop",
        spec=hpa.HpaSpec(max_replicas, min_replicas, metrics, behavior),
        status=status or hpa.HpaStatus(current_replicas=3, desired_replicas=3),
        scale_target_ref=hpa.ObjectReference("Deployment", "web", "apps/v1"),
    )


SEEN = hpa.HpaState(recommendations=())


# --- events and messages ---------------------------------------------------------------------


def test_scale_up_event_names_the_winning_metric() -> None:
    result = hpa.reconcile(
        autoscaler(QPS, QUEUE),
        SCALE_3,
        pods(3),
        (samples(20000, 20000, 20000), rc.ExternalMetricValues((1500,))),
        SEEN,
        now=NOW,
    )
    assert result.rescale
    assert result.desired_replicas == 6
    assert result.events == (
        hpa.Event(
            "Normal", "SuccessfulRescale", "New size: 6; reason: pods metric qps above target"
        ),
    )
    assert result.status.last_scale_time == NOW
    active = next(c for c in result.status.conditions if c.type == "ScalingActive")
    assert active.message == (
        "the HPA was able to successfully calculate a replica count from pods metric qps"
    )
    assert result.error is None


def test_scale_down_event_says_all_metrics_below_target() -> None:
    result = hpa.reconcile(
        autoscaler(QPS), SCALE_3, pods(3), (samples(1000, 1000, 1000),), SEEN, now=NOW
    )
    assert result.desired_replicas == 1
    assert result.events[-1].message == "New size: 1; reason: All metrics below target"


def test_above_max_event_reason() -> None:
    result = hpa.reconcile(
        autoscaler(QPS, max_replicas=2), SCALE_3, pods(3), (rc.FetchError("unused"),), SEEN, now=NOW
    )
    assert result.desired_replicas == 2
    assert result.events == (
        hpa.Event(
            "Normal",
            "SuccessfulRescale",
            "New size: 2; reason: Current number of replicas above Spec.MaxReplicas",
        ),
    )
    assert result.status.current_metrics == ()


def test_failed_metric_events_and_messages() -> None:
    error = rc.FetchError("unable to fetch metrics from custom metrics API: boom")
    result = hpa.reconcile(
        autoscaler(QPS, status=hpa.HpaStatus(3, 5)), SCALE_3, pods(3), (error,), SEEN, now=NOW
    )
    inner = "unable to get metric qps: unable to fetch metrics from custom metrics API: boom"
    assert result.events == (
        hpa.Event("Warning", "FailedGetPodsMetric", inner),
        hpa.Event(
            "Warning",
            "FailedComputeMetricsReplicas",
            "invalid metrics (1 invalid out of 1), first error is: "
            f"failed to get pods metric value: {inner}",
        ),
    )
    active = next(c for c in result.status.conditions if c.type == "ScalingActive")
    assert (active.status, active.reason) == ("False", "FailedGetPodsMetric")
    assert active.message == f"the HPA was unable to compute the replica count: {inner}"
    assert result.status.desired_replicas == 5
    assert result.status.current_replicas == 3
    assert result.status.current_metrics == (None,)
    assert result.error is not None
    assert result.error.startswith(
        "failed to compute desired number of replicas based on listed metrics for "
        "Deployment/shop/web: invalid metrics"
    )


def test_partial_failure_scales_and_reports_the_error() -> None:
    result = hpa.reconcile(
        autoscaler(QPS, QUEUE),
        SCALE_3,
        pods(3),
        (samples(20000, 20000, 20000), rc.FetchError("down")),
        SEEN,
        now=NOW,
    )
    assert result.desired_replicas == 6
    assert [e.reason for e in result.events] == ["FailedGetExternalMetric", "SuccessfulRescale"]
    assert result.events[0].message == (
        "unable to get external metric shop/queue/&LabelSelector{MatchLabels:map[string]string"
        "{q: a,},MatchExpressions:[]LabelSelectorRequirement{},}: down"
    )
    assert result.status.current_metrics[1] is None
    assert result.error is not None
    assert result.error.startswith("invalid metrics (1 invalid out of 2)")


def test_selector_events() -> None:
    missing = hpa.reconcile(
        autoscaler(QPS), hpa.Scale(3, 3, None), pods(3), (samples(1, 1, 1),), SEEN, now=NOW
    )
    assert missing.events == (
        hpa.Event("Warning", "SelectorRequired", "selector is required"),
        hpa.Event("Warning", "FailedComputeMetricsReplicas", "selector is required"),
    )
    assert missing.status.current_metrics == ()
    ambiguous = hpa.reconcile(
        autoscaler(QPS),
        SCALE_3,
        pods(3),
        (samples(1, 1, 1),),
        SEEN,
        now=NOW,
        conflicting_hpas=("shop/other",),
    )
    assert ambiguous.events[0].reason == "AmbiguousSelector"
    assert "controlled by multiple HPAs" in ambiguous.events[0].message


def test_failed_get_scale_keeps_status_and_state() -> None:
    previous = hpa.HpaStatus(3, 4, last_scale_time=5.0)
    state = hpa.HpaState(recommendations=(scaling.TimestampedRecommendation(4, NOW - 10),))
    result = hpa.reconcile(
        autoscaler(QPS, status=previous), rc.FetchError("gone"), (), (samples(1),), state, now=NOW
    )
    assert result.state == state
    assert result.status.desired_replicas == 4
    assert result.status.last_scale_time == 5.0
    assert result.events == (hpa.Event("Warning", "FailedGetScale", "gone"),)
    assert result.status.conditions[0].message == (
        "the HPA controller was unable to get the target's current scale: gone"
    )
    assert result.status_changed


def test_failed_rescale_stores_no_scale_event() -> None:
    behavior = scaling.Behavior()
    args = (autoscaler(QPS, behavior=behavior), SCALE_3, pods(3), (samples(20000, 20000, 20000),))
    ok = hpa.reconcile(*args, SEEN, now=NOW)
    assert ok.rescale
    assert ok.state.scale_up_events == (scaling.ScaleEvent(3, NOW),)
    failed = hpa.reconcile(*args, SEEN, now=NOW, scale_update_error="conflict")
    assert not failed.rescale
    assert failed.state.scale_up_events == ()
    assert failed.state.recommendations == ok.state.recommendations
    assert failed.events[-1] == hpa.Event(
        "Warning",
        "FailedRescale",
        "New size: 6; reason: pods metric qps above target; error: conflict",
    )
    assert failed.status.desired_replicas == 3
    assert failed.status.last_scale_time is None


# --- currentMetrics --------------------------------------------------------------------------


def test_current_metrics_entries() -> None:
    described = hpa.ObjectReference("Service", "front", "v1")
    object_value = hpa.MetricSpec(
        type=hpa.OBJECT,
        metric_name="rps",
        described_object=described,
        target=hpa.MetricTarget("Value", value_milli=100000),
    )
    object_average = hpa.MetricSpec(
        type=hpa.OBJECT,
        metric_name="rps",
        described_object=described,
        target=hpa.MetricTarget("AverageValue", average_value_milli=10000),
    )
    result = hpa.reconcile(
        autoscaler(CPU_50, QPS, object_value, object_average),
        SCALE_3,
        pods(3),
        (
            samples(400, 500, 600),
            samples(9000, 10000, 11000),
            rc.ObjectMetricValue(100000),
            rc.ObjectMetricValue(31000),
        ),
        SEEN,
        now=NOW,
    )
    assert result.status.current_metrics == (
        hpa.MetricStatus(
            "Resource",
            hpa.MetricValueStatus(average_value_milli=500, average_utilization=50),
            resource="cpu",
        ),
        hpa.MetricStatus(
            "Pods", hpa.MetricValueStatus(average_value_milli=10000), metric_name="qps"
        ),
        hpa.MetricStatus(
            "Object",
            hpa.MetricValueStatus(value_milli=100000),
            metric_name="rps",
            described_object=described,
        ),
        hpa.MetricStatus(
            "Object",
            hpa.MetricValueStatus(average_value_milli=10334),
            metric_name="rps",
            described_object=described,
        ),
    )
    # Object AverageValue: 31000 / (10000 * 3) = 1.033 is within tolerance -> 3 everywhere.
    assert not result.rescale


# --- state across passes ---------------------------------------------------------------------


def test_legacy_stabilization_across_passes() -> None:
    """Load drops at t0: the size holds for the 300 s window, then follows the lowest demand."""
    hpa_object = autoscaler(QPS)
    state = hpa.HpaState()  # a fresh controller
    scale = hpa.Scale(6, 6, "app=test")
    sizes = []
    for step in range(0, 331, 15):
        result = hpa.reconcile(
            hpa_object, scale, pods(6), (samples(*[5000] * 6),), state, now=NOW + step
        )
        state = result.state
        if result.rescale:
            scale = hpa.Scale(result.desired_replicas, result.desired_replicas, "app=test")
        sizes.append(scale.spec_replicas)
    # The first pass recorded 6 at NOW; a sample exactly 300 s old still counts (legacy).
    assert sizes[: 300 // 15 + 1] == [6] * 21
    assert sizes[21:] == [3, 3]
    # The initial record plus one per pass (22), then the aged-out slots are reused.
    assert len(state.recommendations or ()) == 22


def test_behavior_rate_limit_uses_recorded_events() -> None:
    """Pods +2 per 60 s: 4 -> 6 -> (blocked within the period) -> 8 once the event ages out."""
    behavior = scaling.Behavior(
        scale_up=scaling.ScalingRules(policies=(scaling.ScalingPolicy("Pods", 2, 60),))
    )
    hpa_object = autoscaler(QPS, max_replicas=20, behavior=behavior)
    state = SEEN
    size = 4
    trace = []
    for step in (0, 15, 30, 45, 60):
        result = hpa.reconcile(
            hpa_object,
            hpa.Scale(size, size, "app=test"),
            pods(size),
            (samples(*[50000] * size),),
            state,
            now=NOW + step,
        )
        state = result.state
        size = result.desired_replicas
        trace.append(size)
    # 15..45 s: the +2 event is inside 60 s -> period start 4, limit 6 = current. 60 s: the
    # event is exactly 60 s old -> outside -> start 6 -> 8.
    assert trace == [6, 6, 6, 6, 8]
    assert [e.replica_change for e in state.scale_up_events] == [2, 2]


def test_status_changed_only_when_something_changed() -> None:
    first = hpa.reconcile(
        autoscaler(QPS), SCALE_3, pods(3), (samples(*[10000] * 3),), SEEN, now=NOW
    )
    assert first.status_changed
    again = hpa.reconcile(
        autoscaler(QPS, status=first.status),
        SCALE_3,
        pods(3),
        (samples(*[10000] * 3),),
        first.state,
        now=NOW + 15,
    )
    assert not again.status_changed
    assert again.status.conditions == first.status.conditions


# --- conditions ------------------------------------------------------------------------------


def test_condition_transition_time_moves_only_on_status_flip() -> None:
    start = (hpa.Condition("AbleToScale", "True", "ReadyForNewScale", "m", 10.0),)
    same = hpa.set_condition_in_list(start, "AbleToScale", "True", "SucceededRescale", "x", now=99)
    assert same == (hpa.Condition("AbleToScale", "True", "SucceededRescale", "x", 10.0),)
    flipped = hpa.set_condition_in_list(same, "AbleToScale", "False", "FailedGetScale", "y", now=99)
    assert flipped[0].last_transition_time == 99
    added = hpa.set_condition_in_list(flipped, "ScalingActive", "True", "r", "z", now=100)
    assert [c.type for c in added] == ["AbleToScale", "ScalingActive"]
    assert added[1].last_transition_time == 100


def test_conditions_keep_their_previous_order() -> None:
    previous = hpa.HpaStatus(
        3,
        3,
        conditions=(
            hpa.Condition("ScalingLimited", "False", "DesiredWithinRange", "", 1.0),
            hpa.Condition("ScalingActive", "True", "ValidMetricFound", "", 1.0),
            hpa.Condition("AbleToScale", "True", "ReadyForNewScale", "", 1.0),
        ),
    )
    result = hpa.reconcile(
        autoscaler(QPS, status=previous), SCALE_3, pods(3), (samples(*[20000] * 3),), SEEN, now=NOW
    )
    assert [(c.type, c.reason) for c in result.status.conditions] == [
        ("ScalingLimited", "DesiredWithinRange"),
        ("ScalingActive", "ValidMetricFound"),
        ("AbleToScale", "SucceededRescale"),
    ]
    assert all(c.last_transition_time == 1.0 for c in result.status.conditions)


# --- replica calculator details ---------------------------------------------------------------


def test_integer_average_truncates_toward_zero_like_go() -> None:
    # Go: -3 / 2 == -1 (Python's -3 // 2 is -2).
    assert rc.get_metric_usage_ratio({"a": -1, "b": -2}, 10) == (-0.1, -1)
    assert rc.get_metric_usage_ratio({"a": 1, "b": 2}, 10) == (0.1, 1)


def test_group_pods_classification() -> None:
    config = rc.PodReadinessConfig(120, 10)
    pod_list = (
        rc.Pod("deleting", deletion_timestamp=NOW - 5),
        rc.Pod("failed", phase="Failed"),
        rc.Pod("pending", phase="Pending", ready=False),
        rc.Pod("missing"),
        rc.Pod("no-condition", ready=None),
        rc.Pod("ready"),
        rc.Pod("succeeded", phase="Succeeded"),
    )
    metrics = {
        name: rc.PodMetricSample(name, 1, NOW)
        for name in ("deleting", "failed", "pending", "no-condition", "ready", "succeeded")
    }
    cpu = rc.group_pods(pod_list, metrics, "cpu", now=NOW, config=config)
    assert cpu.ignored_pods == {"deleting", "failed"}
    assert cpu.unready_pods == {"pending", "no-condition"}
    assert cpu.missing_pods == {"missing"}
    assert cpu.ready_pod_count == 2
    custom = rc.group_pods(pod_list, metrics, "", now=NOW, config=config)
    assert custom.unready_pods == {"pending"}
    assert custom.ready_pod_count == 3


def test_ready_pod_count_counts_deleting_ready_pods() -> None:
    pod_list = (
        rc.Pod("a", deletion_timestamp=NOW - 5),
        rc.Pod("b", ready=False),
        rc.Pod("c", phase="Pending"),
        rc.Pod("d"),
    )
    assert rc.get_ready_pods_count(pod_list) == 2


def test_replica_counts_are_capped_at_int32() -> None:
    proposal = rc.get_external_per_pod_metric_replicas(
        1, 1, "m", rc.Tolerances(), rc.ExternalMetricValues((2**62, 2**62))
    )
    assert proposal.replicas == 2**31 - 1
    assert proposal.usage_milli == 2**63 - 1


def test_mismatched_observation_is_a_caller_error() -> None:
    with pytest.raises(TypeError):
        hpa.reconcile(autoscaler(QPS), SCALE_3, pods(3), (rc.ObjectMetricValue(1),), SEEN, now=NOW)
    with pytest.raises(ValueError, match="1 metrics but 2 observations"):
        hpa.reconcile(autoscaler(QPS), SCALE_3, pods(3), (samples(1), samples(1)), SEEN, now=NOW)


def test_invalid_metric_selector_fails_the_metric() -> None:
    bad = hpa.MetricSpec(
        type=hpa.PODS,
        metric_name="qps",
        selector={"matchExpressions": [{"key": "a", "operator": "Near", "values": ["b"]}]},
        target=hpa.MetricTarget("AverageValue", average_value_milli=1000),
    )
    result = hpa.reconcile(autoscaler(bad), SCALE_3, pods(3), (samples(1, 1, 1),), SEEN, now=NOW)
    assert result.events[0] == hpa.Event(
        "Warning", "FailedGetPodsMetric", '"Near" is not a valid label selector operator'
    )


# --- defaulting ------------------------------------------------------------------------------


def test_defaults_fill_min_metrics_and_behavior() -> None:
    spec = hpa.set_defaults_horizontal_pod_autoscaler(
        hpa.HpaSpec(max_replicas=5, min_replicas=None, behavior=scaling.Behavior())
    )
    assert spec.min_replicas == 1
    assert spec.metrics == (
        hpa.MetricSpec(type="Resource", resource="cpu", target=hpa.MetricTarget("Utilization", 80)),
    )
    assert spec.behavior is not None
    assert spec.behavior.scale_down is not None
    assert spec.behavior.scale_down.stabilization_window_seconds is None
    assert hpa.set_defaults_horizontal_pod_autoscaler(spec) == spec
    window = scaling.maybe_init_scale_down_stabilization_window(spec.behavior, 120)
    assert window.scale_down is not None
    assert window.scale_down.stabilization_window_seconds == 120


def test_tolerances_for_hpa() -> None:
    behavior = scaling.Behavior(
        scale_up=scaling.ScalingRules(tolerance=0.05), scale_down=scaling.ScalingRules()
    )
    assert hpa.tolerances_for_hpa(behavior, hpa.ControllerConfig()) == rc.Tolerances(0.05, 0.1)
    gate_off = hpa.ControllerConfig(configurable_tolerance=False)
    assert hpa.tolerances_for_hpa(behavior, gate_off) == rc.Tolerances(0.1, 0.1)
    assert hpa.tolerances_for_hpa(None, hpa.ControllerConfig(tolerance=0.2)) == rc.Tolerances(
        0.2, 0.2
    )
