"""``localcluster.manifests``: autoscaling/v2 HPA YAML into the HPA math's dataclasses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from localcluster import hpa, manifests, scaling

EXAMPLES = Path(__file__).resolve().parents[2] / "apiservice" / "examples"

BASE = """
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: model, namespace: ml}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: model}
  maxReplicas: 5
  metrics:
    - type: Pods
      pods:
        metric: {name: inference_queue_depth}
        target: {type: AverageValue, averageValue: "4"}
"""


def base() -> dict[str, Any]:
    """A fresh valid document to break one field of."""
    return yaml.safe_load(BASE)


def hpa_files() -> list[Path]:
    """Every example file (top level and demo/) holding an HPA document."""
    return sorted(
        path
        for path in [*EXAMPLES.glob("*.yaml"), *(EXAMPLES / "demo").glob("*.yaml")]
        if any(
            isinstance(d, dict) and d.get("kind") == manifests.KIND
            for d in yaml.safe_load_all(path.read_text())
        )
    )


def test_the_examples_hold_hpas_at_both_levels() -> None:
    names = {str(p.relative_to(EXAMPLES)) for p in hpa_files()}
    assert {"hpa.yaml", "hpa-tuned.yaml", "hpa-external.yaml"} <= names
    assert {"demo/hpa-demo.yaml", "demo/hpa-compare-cpu.yaml"} <= names


@pytest.mark.parametrize("path", hpa_files(), ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_every_example_hpa_loads(path: Path) -> None:
    parsed = manifests.load_hpa(path)
    raw = next(d for d in yaml.safe_load_all(path.read_text()) if d.get("kind") == manifests.KIND)
    assert (parsed.name, parsed.namespace) == (raw["metadata"]["name"], "inference")
    assert parsed.scale_target_ref == hpa.ObjectReference("Deployment", "model", "apps/v1")
    assert parsed.spec.max_replicas == raw["spec"]["maxReplicas"]
    assert [m.type for m in parsed.spec.metrics] == [m["type"] for m in raw["spec"]["metrics"]]
    assert (parsed.spec.behavior is None) == ("behavior" not in raw["spec"])


def test_hpa_yaml_field_by_field() -> None:
    parsed = manifests.load_hpa(EXAMPLES / "hpa.yaml")
    deployment = hpa.ObjectReference("Deployment", "model", "apps/v1")
    assert parsed == hpa.HorizontalPodAutoscaler(
        name="model",
        namespace="inference",
        scale_target_ref=deployment,
        spec=hpa.HpaSpec(
            min_replicas=1,
            max_replicas=10,
            metrics=(
                hpa.MetricSpec(
                    "Pods",
                    hpa.MetricTarget("AverageValue", average_value_milli=3000),
                    metric_name="inference_concurrency",
                ),
                hpa.MetricSpec(
                    "Pods",
                    hpa.MetricTarget("AverageValue", average_value_milli=4000),
                    metric_name="inference_queue_depth",
                ),
                hpa.MetricSpec(
                    "Object",
                    hpa.MetricTarget("Value", value_milli=500),
                    metric_name="inference_latency_p99_seconds",
                    described_object=deployment,
                ),
            ),
            behavior=scaling.Behavior(
                scale_up=scaling.ScalingRules(
                    stabilization_window_seconds=0,
                    select_policy="Max",
                    policies=(
                        scaling.ScalingPolicy("Pods", 4, 15),
                        scaling.ScalingPolicy("Percent", 100, 15),
                    ),
                ),
                scale_down=scaling.ScalingRules(
                    stabilization_window_seconds=None,
                    select_policy="Max",
                    policies=(scaling.ScalingPolicy("Percent", 100, 15),),
                ),
            ),
        ),
    )


def test_external_metric_keeps_its_selector() -> None:
    parsed = manifests.load_hpa(EXAMPLES / "hpa-external.yaml")
    external = parsed.spec.metrics[0]
    assert external == hpa.MetricSpec(
        "External",
        hpa.MetricTarget("AverageValue", average_value_milli=4000),
        metric_name="inference_queue_depth",
        selector={"matchLabels": {"deployment": "model"}},
    )
    assert parsed.spec.behavior is None
    assert parsed.spec.metrics[1].selector is None


def test_resource_metric_and_tuned_behavior() -> None:
    cpu = manifests.load_hpa(EXAMPLES / "demo" / "hpa-compare-cpu.yaml").spec.metrics
    assert cpu == (hpa.MetricSpec("Resource", hpa.MetricTarget("Utilization", 70), "cpu"),)
    tuned = manifests.load_hpa(EXAMPLES / "hpa-tuned.yaml").spec.behavior
    assert tuned is not None
    assert tuned.scale_down == scaling.ScalingRules(
        300, None, (scaling.ScalingPolicy("Pods", 1, 60),)
    )


@pytest.mark.parametrize(
    ("written", "milli"),
    [
        ('"500m"', 500),
        ('"4"', 4000),
        ("4", 4000),
        ('"1.5"', 1500),
        ("1.5", 1500),
        ('"2k"', 2_000_000),
        ('"1Ki"', 1_024_000),
        ('"100u"', 1),  # MilliValue rounds up
        ('"1e-3"', 1),
    ],
)
def test_quantities_become_milli_units(written: str, milli: int) -> None:
    text = BASE.replace('averageValue: "4"', f"averageValue: {written}")
    parsed = manifests.parse_hpa(yaml.safe_load(text))
    assert parsed.spec.metrics[0].target.average_value_milli == milli


def test_object_metric_selector_described_object_and_tolerance() -> None:
    document = base()
    document["spec"]["metrics"] = [
        {
            "type": "Object",
            "object": {
                "describedObject": {"kind": "Service", "name": "gateway"},
                "metric": {
                    "name": "inference_queue_depth",
                    "selector": {"matchExpressions": [{"key": "deployment", "operator": "Exists"}]},
                },
                "target": {"type": "AverageValue", "averageValue": "250m"},
            },
        }
    ]
    document["spec"]["behavior"] = {"scaleDown": {"tolerance": "50m"}}
    parsed = manifests.parse_hpa(document)
    (metric,) = parsed.spec.metrics
    assert metric.described_object == hpa.ObjectReference("Service", "gateway", "")
    assert metric.selector == {"matchExpressions": [{"key": "deployment", "operator": "Exists"}]}
    assert metric.target == hpa.MetricTarget("AverageValue", average_value_milli=250)
    assert parsed.spec.behavior == scaling.Behavior(None, scaling.ScalingRules(tolerance=0.05))


def test_defaults_when_optional_fields_are_left_out() -> None:
    document = base()
    del document["metadata"]["namespace"]
    del document["spec"]["metrics"]
    parsed = manifests.parse_hpa(document)
    assert parsed.namespace == "default"
    assert parsed.spec.metrics == ()
    assert parsed.spec.min_replicas is None  # defaulted to 1 by the math, as by the API


def _set(path: str, value: Any) -> dict[str, Any]:
    """The base document with ``path`` (dotted, ``[i]`` for list items) set, or removed if
    ``value`` is ``...``."""
    document = base()
    keys: list[str | int] = []
    for part in path.split("."):
        name, _, index = part.partition("[")
        keys.append(name)
        if index:
            keys.append(int(index.rstrip("]")))
    node: Any = document
    for key in keys[:-1]:
        node = node[key]
    if value is ...:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return document


@pytest.mark.parametrize(
    ("document", "named"),
    [
        (_set("apiVersion", "autoscaling/v1"), "autoscaling/v1"),
        (_set("apiVersion", ...), "apiVersion"),
        (_set("kind", "Deployment"), "kind"),
        (_set("metadata.name", ...), "metadata.name"),
        (_set("metadata.name", 7), "metadata.name"),
        (_set("spec", ...), "spec"),
        (_set("spec", ["x"]), "spec"),
        (_set("spec.maxReplicas", ...), "spec.maxReplicas"),
        (_set("spec.maxReplicas", "5"), "spec.maxReplicas"),
        (_set("spec.maxReplicas", True), "spec.maxReplicas"),
        (_set("spec.minReplicas", 1.5), "spec.minReplicas"),
        (_set("spec.scaleTargetRef", ...), "spec.scaleTargetRef"),
        (_set("spec.scaleTargetRef.name", ...), "spec.scaleTargetRef.name"),
        (_set("spec.metrics", {"type": "Pods"}), "spec.metrics"),
        (_set("spec.metrics[0]", "Pods"), "spec.metrics[0]"),
        (_set("spec.metrics[0].type", ...), "spec.metrics[0].type"),
        (_set("spec.metrics[0].type", "Object"), "spec.metrics[0].object"),
        (_set("spec.metrics[0].pods.target", ...), "spec.metrics[0].pods.target"),
        (_set("spec.metrics[0].pods.target.type", ...), "spec.metrics[0].pods.target.type"),
        (_set("spec.metrics[0].pods.metric", ...), "spec.metrics[0].pods.metric"),
        (_set("spec.metrics[0].pods.metric.name", ...), "spec.metrics[0].pods.metric.name"),
        (
            _set("spec.metrics[0].pods.target.averageValue", "four"),
            "spec.metrics[0].pods.target.averageValue",
        ),
        (
            _set("spec.metrics[0].pods.target.averageValue", "4x"),
            "spec.metrics[0].pods.target.averageValue",
        ),
        (_set("spec.behavior", 5), "spec.behavior"),
        # a metric selector is a metav1.LabelSelector: what does not decode as one is refused
        (_set("spec.metrics[0].pods.metric.selector", ["a"]), "pods.metric.selector"),
        (
            _set("spec.metrics[0].pods.metric.selector", {"matchLabels": ["a"]}),
            "spec.metrics[0].pods.metric.selector.matchLabels",
        ),
        (
            _set("spec.metrics[0].pods.metric.selector", {"matchLabels": {"tier": 1}}),
            "spec.metrics[0].pods.metric.selector.matchLabels",
        ),
        (
            _set("spec.metrics[0].pods.metric.selector", {"matchExpressions": {"key": "a"}}),
            "spec.metrics[0].pods.metric.selector.matchExpressions",
        ),
        (
            _set("spec.metrics[0].pods.metric.selector", {"matchExpressions": ["a"]}),
            "spec.metrics[0].pods.metric.selector.matchExpressions[0]",
        ),
        (
            _set(
                "spec.metrics[0].pods.metric.selector",
                {"matchExpressions": [{"key": "a", "operator": "In", "values": "x"}]},
            ),
            "spec.metrics[0].pods.metric.selector.matchExpressions[0].values",
        ),
        (
            _set(
                "spec.metrics[0].pods.metric.selector",
                {"matchExpressions": [{"key": 3, "operator": "Exists"}]},
            ),
            "spec.metrics[0].pods.metric.selector.matchExpressions[0].key",
        ),
        (_set("spec.behavior", {"scaleUp": {"policies": [{"type": "Pods"}]}}), "spec.behavior"),
        (_set("spec.behavior", {"scaleUp": []}), "spec.behavior"),
    ],
)
def test_invalid_documents_name_the_field(document: dict[str, Any], named: str) -> None:
    with pytest.raises(manifests.ManifestError) as raised:
        manifests.parse_hpa(document)
    assert named in str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("document", [None, "kind: HorizontalPodAutoscaler", ["a"], 3])
def test_a_non_mapping_is_not_a_manifest(document: Any) -> None:
    with pytest.raises(manifests.ManifestError, match="not a YAML mapping"):
        manifests.parse_hpa(document)


DEPLOYMENT = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: model}\n"


@pytest.mark.parametrize(
    ("text", "found"),
    [
        (DEPLOYMENT, 0),
        ("", 0),
        (f"{BASE}---\n{BASE}", 2),
        (f"{DEPLOYMENT}---\n{BASE}---\n{BASE}", 2),
    ],
)
def test_a_file_needs_exactly_one_hpa(tmp_path: Path, text: str, found: int) -> None:
    path = tmp_path / "hpa.yaml"
    path.write_text(text)
    with pytest.raises(manifests.ManifestError) as raised:
        manifests.load_hpa(path)
    assert str(raised.value) == (
        f"{path}: expected exactly one HorizontalPodAutoscaler, found {found}"
    )


def test_other_documents_are_skipped_and_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "hpa.yaml"
    path.write_text(f"{DEPLOYMENT}---\n{BASE}")
    assert manifests.load_hpa(path).spec.metrics[0].metric_name == "inference_queue_depth"
    path.write_text(f"{DEPLOYMENT}---\n{BASE.replace('maxReplicas: 5', 'maxReplicas: x')}")
    with pytest.raises(manifests.ManifestError, match=rf"^{path}: .*maxReplicas"):
        manifests.load_hpa(path)


@pytest.mark.parametrize("text", ["spec: [unclosed", "a: b\n c"])
def test_unreadable_yaml_is_a_manifest_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "hpa.yaml"
    path.write_text(text)
    with pytest.raises(manifests.ManifestError, match=str(path)):
        manifests.load_hpa(path)


def test_a_missing_file_is_a_manifest_error(tmp_path: Path) -> None:
    with pytest.raises(manifests.ManifestError, match="No such file"):
        manifests.load_hpa(tmp_path / "absent.yaml")


@pytest.mark.parametrize(
    ("path", "value", "field", "message"),
    [
        ("spec.minReplicas", 0, "spec.minReplicas", "greater than or equal to 1"),
        ("spec.maxReplicas", 0, "spec.maxReplicas", "greater than or equal to minReplicas"),
        ("spec.metrics[0].type", "Memory", "spec.metrics[0].memory", "is required"),
        (
            "spec.metrics[0].pods.target.type",
            "Value",
            "spec.metrics[0].pods.target.type",
            "must be AverageValue",
        ),
        (
            "spec.metrics[0].pods.target.averageValue",
            "0",
            "spec.metrics[0].pods.target.averageValue",
            "must be positive",
        ),
        (
            "spec.metrics[0].pods.target.averageValue",
            "-2",
            "spec.metrics[0].pods.target.averageValue",
            "must be positive",
        ),
        (
            "spec.metrics[0].pods.target.averageValue",
            ...,
            "spec.metrics[0].pods.target.averageValue",
            "is required for type AverageValue",
        ),
        (
            "spec.behavior",
            {"scaleUp": {"policies": []}},
            "spec.behavior.scaleUp.policies",
            "at least one Policy",
        ),
        (
            "spec.behavior",
            {"scaleUp": {"selectPolicy": "Fastest"}},
            "spec.behavior.scaleUp.selectPolicy",
            "Max, Min, Disabled",
        ),
        (
            "spec.behavior",
            {"scaleDown": {"stabilizationWindowSeconds": 3601}},
            "spec.behavior.scaleDown.stabilizationWindowSeconds",
            "between 0 and 3600",
        ),
        (
            "spec.behavior",
            {"scaleDown": {"policies": [{"type": "Pods", "value": 0, "periodSeconds": 5}]}},
            "spec.behavior.scaleDown.policies[0].value",
            "greater than zero",
        ),
        (
            "spec.behavior",
            {"scaleDown": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 1801}]}},
            "spec.behavior.scaleDown.policies[0].periodSeconds",
            "between 1 and 1800",
        ),
        (
            "spec.behavior",
            {"scaleDown": {"policies": [{"type": "Replicas", "value": 1, "periodSeconds": 5}]}},
            "spec.behavior.scaleDown.policies[0].type",
            "Pods or Percent",
        ),
        (
            "spec.behavior",
            {"scaleDown": {"tolerance": "-50m"}},
            "spec.behavior.scaleDown.tolerance",
            "greater than or equal to 0",
        ),
        (
            "spec.behavior",
            {"scaleDown": {"policies": [{"type": "Pods"}]}},
            "spec.behavior.scaleDown.policies[0].value",
            "is required",
        ),
    ],
)
def test_what_the_api_server_rejects_is_rejected_naming_the_field(
    path: str, value: Any, field: str, message: str
) -> None:
    with pytest.raises(manifests.ManifestError) as raised:
        manifests.parse_hpa(_set(path, value))
    assert raised.value.field == field
    assert str(raised.value).startswith(field)
    assert message in str(raised.value)


def test_errors_from_a_file_name_the_line_of_the_field(tmp_path: Path) -> None:
    path = tmp_path / "hpa.yaml"
    text = f"{DEPLOYMENT}---\n{BASE}".replace('averageValue: "4"', 'averageValue: "0"')
    path.write_text(text)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "averageValue" in t)
    with pytest.raises(manifests.ManifestError) as raised:
        manifests.load_hpa(path)
    assert str(raised.value) == (
        f"{path}: line {line}: spec.metrics[0].pods.target.averageValue: must be positive"
    )
    # a missing field is placed at its closest written parent
    lines = text.splitlines()
    assert manifests.field_line(text, "spec.metrics[0].pods.selector") == line - 2
    assert lines[line - 3].strip() == "pods:"
    max_line = manifests.field_line(text, "spec.maxReplicas")
    assert max_line is not None and lines[max_line - 1].strip() == "maxReplicas: 5"
    assert manifests.field_line("kind: Deployment\n", "spec") is None


def test_load_hpa_edits_and_checks_before_it_answers(tmp_path: Path) -> None:
    path = tmp_path / "hpa.yaml"
    path.write_text(BASE)

    def edit(document: dict[str, Any]) -> None:
        document["spec"]["maxReplicas"] = 9

    def check(autoscaler: hpa.HorizontalPodAutoscaler) -> None:
        if autoscaler.spec.max_replicas > 8:
            raise manifests.ManifestError("spec.maxReplicas: too many", "spec.maxReplicas")

    assert manifests.load_hpa(path, edit=edit).spec.max_replicas == 9
    with pytest.raises(manifests.ManifestError, match=rf"^{path}: line 7: spec.maxReplicas: too"):
        manifests.load_hpa(path, edit=edit, check=check)
