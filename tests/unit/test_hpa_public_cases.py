"""Replay every upstream conformance case of ``hpa-cases-public.json`` through localcluster.

The schema is section 0 of ``shared/reference/hpa-algorithm.md``. :func:`replay` is the
thin adapter: it decodes one case's JSON into the library's dataclasses, calls the function
named by the case's ``kind`` and returns the observed numbers in the shape of ``expected``,
so a test only compares. ``test_hpa.py`` reuses it for our own cases.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from localcluster import hpa, scaling
from localcluster import replica_calculator as rc

PUBLIC_CASES = Path(
    os.environ.get("HPA_CASES_PUBLIC", Path(__file__).with_name("hpa_cases_public.json"))
)
NOW = 1_000_000.0
"""The evaluation instant of every case (``now_s``); ages are converted against it."""
SELECTOR = "app=test"
"""A valid scale selector for cases that do not state one."""
KINDS = {
    "replica_calc",
    "reconcile",
    "behavior_rate_limit",
    "stabilize_behavior",
    "stabilize_legacy",
    "convert_rules_legacy",
    "scale_limit",
    "store_scale_event",
    "default_rules",
}


def load_cases(path: Path) -> list[dict[str, Any]]:
    """The cases of one JSON file, checked for unique ids and known kinds."""
    cases = json.loads(path.read_text())
    ids = [case["id"] for case in cases]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    assert {case["kind"] for case in cases} <= KINDS
    return cases


# --- decoding ---------------------------------------------------------------------------------


def _pod(raw: dict[str, Any]) -> rc.Pod:
    return rc.Pod(
        name=raw["name"],
        phase=raw["phase"],
        ready=raw["ready"],
        ready_transition_time=float(raw["ready_transition_time_s"]),
        start_time=None if raw["start_time_s"] is None else float(raw["start_time_s"]),
        deletion_timestamp=NOW if raw["deleting"] else None,
        cpu_request_milli=raw.get("cpu_request_milli"),
    )


def _target(raw: dict[str, Any]) -> hpa.MetricTarget:
    return hpa.MetricTarget(
        type=raw["type"],
        average_utilization=raw.get("average_utilization"),
        average_value_milli=raw.get("average_value_milli"),
        value_milli=raw.get("value_milli"),
    )


def _metric(raw: dict[str, Any]) -> hpa.MetricSpec:
    described = raw.get("described_object")
    return hpa.MetricSpec(
        type=raw["type"],
        target=_target(raw["target"]),
        resource=raw.get("resource"),
        metric_name=raw.get("metric_name"),
        selector=raw.get("selector"),
        described_object=(
            hpa.ObjectReference(
                kind=described["kind"],
                name=described["name"],
                api_version=described.get("apiVersion", ""),
            )
            if described
            else None
        ),
    )


def _observation(metric: hpa.MetricSpec, raw: dict[str, Any]) -> hpa.Observation:
    if metric.type not in {hpa.RESOURCE, hpa.PODS, hpa.OBJECT, hpa.EXTERNAL}:
        return rc.FetchError("never fetched: the metric type is invalid")
    if "error" in raw:
        return rc.FetchError(raw["error"])
    if "pod_metrics" in raw:
        return rc.PodMetrics(
            tuple(
                rc.PodMetricSample(
                    pod=sample["pod"],
                    value_milli=sample["value_milli"],
                    timestamp=float(sample["timestamp_s"]),
                    window_seconds=float(sample["window_s"]),
                )
                for sample in raw["pod_metrics"]
            )
        )
    if "values_milli" in raw:
        return rc.ExternalMetricValues(tuple(raw["values_milli"]))
    assert metric.type == hpa.OBJECT, raw
    return rc.ObjectMetricValue(raw["value_milli"])


def _policies(raw: list[dict[str, Any]] | None) -> tuple[scaling.ScalingPolicy, ...] | None:
    if raw is None:
        return None
    return tuple(
        scaling.ScalingPolicy(policy["type"], policy["value"], policy["period_seconds"])
        for policy in raw
    )


def _rules(raw: dict[str, Any] | None) -> scaling.ScalingRules | None:
    if raw is None:
        return None
    return scaling.ScalingRules(
        stabilization_window_seconds=raw.get("stabilization_window_seconds"),
        select_policy=raw.get("select_policy"),
        policies=_policies(raw.get("policies")),
        tolerance=raw.get("tolerance"),
    )


def _encode_rules(rules: scaling.ScalingRules) -> dict[str, Any]:
    return {
        "stabilization_window_seconds": rules.stabilization_window_seconds,
        "select_policy": rules.select_policy,
        "policies": None
        if rules.policies is None
        else [
            {"type": p.type, "value": p.value, "period_seconds": p.period_seconds}
            for p in rules.policies
        ],
    }


def _events(raw: list[dict[str, Any]], now: float) -> tuple[scaling.ScaleEvent, ...]:
    return tuple(
        scaling.ScaleEvent(event["change"], now - event["age_s"], event.get("outdated", False))
        for event in raw
    )


def _recommendations(
    raw: list[dict[str, Any]] | None, now: float
) -> tuple[scaling.TimestampedRecommendation, ...] | None:
    if raw is None:
        return None
    return tuple(scaling.TimestampedRecommendation(r["replicas"], now - r["age_s"]) for r in raw)


def _tolerances(raw: dict[str, Any]) -> rc.Tolerances:
    return rc.Tolerances(scale_up=raw["scale_up"], scale_down=raw["scale_down"])


def _readiness(raw: dict[str, Any]) -> rc.PodReadinessConfig:
    return rc.PodReadinessConfig(
        cpu_initialization_period_seconds=raw["cpu_initialization_period_s"],
        delay_of_initial_readiness_status_seconds=raw["delay_of_initial_readiness_status_s"],
    )


# --- one function per kind -------------------------------------------------------------------


def _replica_calc(case_input: dict[str, Any]) -> dict[str, Any]:
    metric = _metric(case_input["metric"])
    result = hpa.compute_replicas_for_metric(
        metric,
        _observation(metric, case_input["observed"]),
        spec_replicas=case_input["spec_replicas"],
        status_replicas=case_input["status_replicas"],
        pods=tuple(_pod(p) for p in case_input["pods"]),
        tolerances=_tolerances(case_input["tolerance"]),
        now=float(case_input["now_s"]),
        readiness=_readiness(case_input["controller"]),
    )
    if isinstance(result, hpa.MetricFailure):
        return {"error": result.error}
    current = result.status.current
    if current.average_utilization is not None:
        return {
            "replicas": result.replicas,
            "utilization_percent": current.average_utilization,
            "raw_average_milli": current.average_value_milli,
        }
    usage = current.value_milli if current.value_milli is not None else current.average_value_milli
    return {"replicas": result.replicas, "usage_milli": usage}


def _reconcile(case_input: dict[str, Any]) -> dict[str, Any]:
    now = float(case_input["now_s"])
    raw_hpa = case_input["hpa"]
    raw_behavior = raw_hpa["behavior"]
    behavior = (
        None
        if raw_behavior is None
        else scaling.Behavior(
            scale_up=_rules(raw_behavior.get("scale_up")),
            scale_down=_rules(raw_behavior.get("scale_down")),
        )
    )
    metrics = tuple(_metric(m) for m in raw_hpa["metrics"])
    spec = hpa.HpaSpec(
        max_replicas=raw_hpa["max_replicas"],
        min_replicas=raw_hpa["min_replicas"],
        metrics=metrics,
        behavior=behavior,
    )
    controller = case_input["controller"]
    config = hpa.ControllerConfig(
        tolerance=controller["tolerance"],
        cpu_initialization_period_seconds=controller["cpu_initialization_period_s"],
        delay_of_initial_readiness_status_seconds=controller["delay_of_initial_readiness_status_s"],
        downscale_stabilization_window_seconds=controller["downscale_stabilization_window_s"],
        scale_up_limit_factor=controller["scale_up_limit_factor"],
        scale_up_limit_minimum=controller["scale_up_limit_minimum"],
        configurable_tolerance=case_input["feature_gates"]["HPAConfigurableTolerance"],
    )
    raw_state = case_input["state"]
    state = hpa.HpaState(
        recommendations=_recommendations(raw_state["recommendations"], now),
        scale_up_events=_events(raw_state["scale_up_events"], now),
        scale_down_events=_events(raw_state["scale_down_events"], now),
    )
    raw_scale = case_input["scale"]
    scale: hpa.Scale | rc.FetchError = (
        rc.FetchError(raw_scale["error"])
        if "error" in raw_scale
        else hpa.Scale(
            spec_replicas=raw_scale["spec_replicas"],
            status_replicas=raw_scale["status_replicas"],
            selector=raw_scale.get("selector", SELECTOR),
        )
    )
    previous = hpa.HpaStatus(desired_replicas=case_input["previous_status_desired_replicas"])
    defaulted = hpa.set_defaults_horizontal_pod_autoscaler(spec)
    observed = case_input["observed"]
    observations = tuple(
        _observation(metric, raw) for metric, raw in zip(defaulted.metrics, observed, strict=True)
    )
    result = hpa.reconcile(
        hpa.HorizontalPodAutoscaler(name="test-hpa", spec=spec, status=previous),
        scale,
        tuple(_pod(p) for p in case_input["pods"]),
        observations,
        state,
        now=now,
        config=config,
        conflicting_hpas=tuple(case_input.get("conflicting_hpas", ())),
        scale_update_error=case_input.get("scale_update_error"),
    )
    return {
        "desired_replicas": result.desired_replicas,
        "rescaled": result.rescale,
        "conditions": [
            {"type": c.type, "status": c.status, "reason": c.reason}
            for c in result.status.conditions
        ],
    }


def _normalization_arg(case_input: dict[str, Any]) -> scaling.NormalizationArg:
    return scaling.NormalizationArg(
        scale_up_behavior=_rules(case_input["scale_up_rules"]) or scaling.ScalingRules(),
        scale_down_behavior=_rules(case_input["scale_down_rules"]) or scaling.ScalingRules(),
        min_replicas=case_input["min_replicas"],
        max_replicas=case_input["max_replicas"],
        current_replicas=case_input["current_replicas"],
        desired_replicas=case_input["prenormalized_desired_replicas"],
    )


def _behavior_rate_limit(case_input: dict[str, Any]) -> dict[str, Any]:
    limited = scaling.convert_desired_replicas_with_behavior_rate(
        _normalization_arg(case_input),
        _events(case_input["scale_up_events"], NOW),
        _events(case_input["scale_down_events"], NOW),
        now=NOW,
    )
    return {"replicas": limited.replicas, "reason": limited.reason}


def _stabilize_behavior(case_input: dict[str, Any]) -> dict[str, Any]:
    args = scaling.NormalizationArg(
        scale_up_behavior=scaling.ScalingRules(
            stabilization_window_seconds=case_input["scale_up_stabilization_window_seconds"]
        ),
        scale_down_behavior=scaling.ScalingRules(
            stabilization_window_seconds=case_input["scale_down_stabilization_window_seconds"]
        ),
        min_replicas=case_input.get("min_replicas", 0),
        max_replicas=case_input.get("max_replicas", 1000),
        current_replicas=case_input["current_replicas"],
        desired_replicas=case_input["prenormalized_desired_replicas"],
    )
    stabilized = scaling.stabilize_recommendation_with_behaviors(
        args, _recommendations(case_input["recommendations"], NOW) or (), now=NOW
    )
    return {
        "stabilized_replicas": stabilized.replicas,
        "stored_recommendations_after": [r.replicas for r in stabilized.recommendations],
    }


def _stabilize_legacy(case_input: dict[str, Any]) -> dict[str, Any]:
    stabilized = scaling.stabilize_recommendation(
        _recommendations(case_input["recommendations"], NOW) or (),
        case_input["prenormalized_desired_replicas"],
        case_input["downscale_stabilization_window_seconds"],
        now=NOW,
    )
    return {
        "stabilized_replicas": stabilized.replicas,
        "recommendation_log_length_after": len(stabilized.recommendations),
    }


def _convert_rules_legacy(case_input: dict[str, Any]) -> dict[str, Any]:
    limited = scaling.convert_desired_replicas_with_rules(
        case_input["current_replicas"],
        case_input["desired_replicas"],
        case_input["min_replicas"],
        case_input["max_replicas"],
        scale_up_limit_factor=case_input["scale_up_limit_factor"],
        scale_up_limit_minimum=case_input["scale_up_limit_minimum"],
    )
    return {"replicas": limited.replicas, "reason": limited.reason}


def _scale_limit(case_input: dict[str, Any]) -> dict[str, Any]:
    rules = _rules(case_input["rules"])
    assert rules is not None
    up_events = _events(case_input["scale_up_events"], NOW)
    down_events = _events(case_input["scale_down_events"], NOW)
    if case_input["direction"] == "up":
        limit = scaling.calculate_scale_up_limit_with_scaling_rules(
            case_input["current_replicas"], up_events, down_events, rules, now=NOW
        )
    else:
        limit = scaling.calculate_scale_down_limit_with_behaviors(
            case_input["current_replicas"], up_events, down_events, rules, now=NOW
        )
    return {"limit": limit}


def _store_scale_event(case_input: dict[str, Any]) -> dict[str, Any]:
    # Upstream's test stores a scale-up from 10 to 10 + change with behavior.scaleUp = rules.
    rules = _rules(case_input["rules"])
    behavior = None if rules is None else scaling.Behavior(scale_up=rules)
    events = _events(case_input["previous_events"], NOW)
    before = scaling.get_replicas_change_per_period(60, events, now=NOW)
    up_events, _ = scaling.store_scale_event(
        behavior, events, (), 10, 10 + case_input["new_replica_change"], now=NOW
    )
    return {
        "replicas_changed_in_last_60s_before_store": before,
        "events_after_store": [
            {"change": e.replica_change, "outdated": e.outdated} for e in up_events
        ],
    }


def _default_rules(case_input: dict[str, Any]) -> dict[str, Any]:
    rules = _rules(case_input["rules"])
    if case_input["direction"] == "up":
        generated = scaling.generate_hpa_scale_up_rules(rules)
    else:
        generated = scaling.generate_hpa_scale_down_rules(rules)
    return {"rules": _encode_rules(generated)}


_BY_KIND = {
    "replica_calc": _replica_calc,
    "reconcile": _reconcile,
    "behavior_rate_limit": _behavior_rate_limit,
    "stabilize_behavior": _stabilize_behavior,
    "stabilize_legacy": _stabilize_legacy,
    "convert_rules_legacy": _convert_rules_legacy,
    "scale_limit": _scale_limit,
    "store_scale_event": _store_scale_event,
    "default_rules": _default_rules,
}


def replay(case: dict[str, Any]) -> dict[str, Any]:
    """Run one case through the library; the result has the keys of the case's ``expected``."""
    return _BY_KIND[case["kind"]](case["input"])


def check(case: dict[str, Any]) -> None:
    """Assert the replay matches ``expected`` on every key it states (errors by substring)."""
    expected = case["expected"]
    observed = replay(case)
    if "error" in expected:
        assert "error" in observed, f"{case['id']}: expected an error, got {observed}"
        assert expected["error"] in observed["error"], case["id"]
        return
    assert "error" not in observed, f"{case['id']}: unexpected error {observed.get('error')}"
    subset = {key: observed[key] for key in expected}
    assert subset == expected, case["summary"]


# --- the replay ------------------------------------------------------------------------------

# Loaded leniently so that test_hpa.py, which imports the adapter from here, still runs where
# the shared file is absent; test_every_public_case_is_replayed then fails loudly instead.
CASES = load_cases(PUBLIC_CASES) if PUBLIC_CASES.is_file() else []


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_public_case(case: dict[str, Any]) -> None:
    check(case)


def test_every_public_case_is_replayed() -> None:
    assert PUBLIC_CASES.is_file(), f"missing {PUBLIC_CASES} (set HPA_CASES_PUBLIC)"
    assert len(CASES) >= 62
    assert {case["kind"] for case in CASES} == KINDS
