"""The example HPA on ``inference_required_replicas`` (``apiservice/examples/hpa-slo.yaml``)
through the HPA emulation's own arithmetic: its target ``AverageValue: "1"`` turns the served
replica count into the desired count, ``ceil(value / 1)``, except where the count is within the
controller's tolerance of the running replicas (what the manifest's header says)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter import catalog, selectors, slo
from localcluster import hpa
from localcluster import replica_calculator as rc
from localcluster.manifests import load_hpa
from localcluster.metrics_client import selector_text

MANIFEST = Path(__file__).resolve().parents[2] / "apiservice" / "examples" / "hpa-slo.yaml"


def desired(required: int, running: int, tolerance: float = 0.1) -> int:
    """What the emulated controller proposes from the example's one metric."""
    [metric] = load_hpa(MANIFEST).spec.metrics
    proposal = hpa.compute_replicas_for_metric(
        metric,
        rc.ObjectMetricValue(required * 1000),
        spec_replicas=running,
        status_replicas=running,
        pods=[],
        tolerances=rc.Tolerances(tolerance, tolerance),
        now=0.0,
        readiness=rc.PodReadinessConfig(),
    )
    assert isinstance(proposal, hpa.MetricProposal), proposal
    return proposal.replicas


def test_the_example_asks_for_the_required_replicas_of_the_deployment_at_an_slo() -> None:
    [metric] = load_hpa(MANIFEST).spec.metrics
    assert metric.type == hpa.OBJECT
    assert metric.metric_name == catalog.REQUIRED_REPLICAS
    assert metric.target.type == hpa.AVERAGE_VALUE
    assert metric.target.average_value_milli == 1000
    # the metricLabelSelector the controller sends, as the adapter reads it
    sent = selector_text(metric.selector)
    assert sent == "quantile=0.99,slo=500ms"
    asked, rest = slo.split(selectors.parse(sent), metric.metric_name)
    assert asked == slo.Slo(0.5, 0.99) and rest == selectors.EVERYTHING


@pytest.mark.parametrize(
    ("running", "required", "expected"),
    [
        (1, 1, 1),
        (2, 5, 5),  # straight to the count, not a ratio of the running pods
        (6, 3, 3),
        (1, 8, 8),
        (4, 0, 0),  # nothing arrives: the HPA's minReplicas is the floor, not this proposal
        (10, 11, 10),  # 11/10 is within the 10 % tolerance: kept
        (10, 9, 10),
        (12, 14, 14),
        (20, 22, 20),
    ],
)
def test_the_proposal_is_the_served_count_outside_the_tolerance(running, required, expected):
    assert desired(required, running) == expected


def test_without_tolerance_every_pod_counts() -> None:
    # behavior.scaleUp/scaleDown.tolerance: 0 where the HPAConfigurableTolerance gate is on
    assert [desired(r, 10, tolerance=0.0) for r in (9, 10, 11)] == [9, 10, 11]
