"""Read ``autoscaling/v2`` HorizontalPodAutoscaler YAML into the HPA math's dataclasses.

The same files a cluster gets (``apiservice/examples/``) drive the local controller, so what the
demo shows is what the real HPA would do with that manifest. Quantities become milli-units the
way the controller reads them (``MilliValue()``, rounding up). Anything the API server would
reject is a ``ManifestError`` whose one-line message names the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from adapter import quantity
from localcluster import hpa, scaling

API_VERSION = "autoscaling/v2"
KIND = "HorizontalPodAutoscaler"


class ManifestError(ValueError):
    """A manifest the API server would not accept, or one that is not an HPA."""


def _field(
    document: Any,
    path: str,
    kind: type | tuple[type, ...],
    required: bool = True,
    where: str = "",
) -> Any:
    """The value at dotted ``path`` of a mapping, type-checked; ``where`` is the mapping's own
    path in the manifest, so that errors name the field in full."""
    full = f"{where}.{path}" if where else path
    node = document
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            if required:
                raise ManifestError(f"{full} is required")
            return None
        node = node[key]
    if not isinstance(node, kind) or (isinstance(node, bool) and bool not in _tuple(kind)):
        raise ManifestError(f"{full} has the wrong type ({type(node).__name__})")
    return node


def _tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _milli(value: Any, path: str) -> int:
    try:
        return quantity.milli_value(quantity.parse_quantity(str(value)))
    except ValueError as error:
        raise ManifestError(f"{path}: {error}") from error


def _target(raw: Any, path: str) -> hpa.MetricTarget:
    target_type = _field(raw, "type", str, where=path)
    utilization = _field(raw, "averageUtilization", int, required=False, where=path)
    average = raw.get("averageValue")
    value = raw.get("value")
    return hpa.MetricTarget(
        type=target_type,
        average_utilization=utilization,
        average_value_milli=None if average is None else _milli(average, f"{path}.averageValue"),
        value_milli=None if value is None else _milli(value, f"{path}.value"),
    )


def _metric(raw: Any, index: int) -> hpa.MetricSpec:
    path = f"spec.metrics[{index}]"
    metric_type = _field(raw, "type", str, where=path)
    source_key = metric_type[:1].lower() + metric_type[1:]
    source = _field(raw, source_key, dict, where=path)
    source_path = f"{path}.{source_key}"
    target = _target(_field(source, "target", dict, where=source_path), f"{source_path}.target")
    if metric_type == hpa.RESOURCE:
        return hpa.MetricSpec(
            metric_type, target, resource=_field(source, "name", str, where=source_path)
        )
    metric = _field(source, "metric", dict, where=source_path)
    described = None
    if metric_type == hpa.OBJECT:
        raw_object = _field(source, "describedObject", dict, where=source_path)
        object_path = f"{source_path}.describedObject"
        described = hpa.ObjectReference(
            kind=_field(raw_object, "kind", str, where=object_path),
            name=_field(raw_object, "name", str, where=object_path),
            api_version=_field(raw_object, "apiVersion", str, required=False, where=object_path)
            or "",
        )
    metric_path = f"{source_path}.metric"
    return hpa.MetricSpec(
        metric_type,
        target,
        metric_name=_field(metric, "name", str, where=metric_path),
        selector=_field(metric, "selector", dict, required=False, where=metric_path),
        described_object=described,
    )


def _rules(raw: Any) -> scaling.ScalingRules | None:
    if raw is None:
        return None
    policies = raw.get("policies")
    tolerance = raw.get("tolerance")
    return scaling.ScalingRules(
        stabilization_window_seconds=raw.get("stabilizationWindowSeconds"),
        select_policy=raw.get("selectPolicy"),
        policies=None
        if policies is None
        else tuple(
            scaling.ScalingPolicy(p["type"], int(p["value"]), int(p["periodSeconds"]))
            for p in policies
        ),
        tolerance=None if tolerance is None else float(quantity.parse_quantity(str(tolerance))),
    )


def parse_hpa(document: Any) -> hpa.HorizontalPodAutoscaler:
    """One HPA document (already YAML-decoded)."""
    if not isinstance(document, dict):
        raise ManifestError("the manifest is not a YAML mapping")
    if document.get("apiVersion") != API_VERSION or document.get("kind") != KIND:
        raise ManifestError(
            f"expected apiVersion {API_VERSION} kind {KIND}, got "
            f"{document.get('apiVersion')} {document.get('kind')}"
        )
    spec = _field(document, "spec", dict)
    target = _field(spec, "scaleTargetRef", dict, where="spec")
    behavior = spec.get("behavior")
    try:
        parsed_behavior = (
            None
            if behavior is None
            else scaling.Behavior(
                scale_up=_rules(behavior.get("scaleUp")),
                scale_down=_rules(behavior.get("scaleDown")),
            )
        )
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise ManifestError(f"spec.behavior is invalid: {error}") from error
    return hpa.HorizontalPodAutoscaler(
        name=_field(document, "metadata.name", str),
        namespace=_field(document, "metadata.namespace", str, required=False) or "default",
        spec=hpa.HpaSpec(
            max_replicas=_field(spec, "maxReplicas", int, where="spec"),
            min_replicas=_field(spec, "minReplicas", int, required=False, where="spec"),
            metrics=tuple(
                _metric(m, i)
                for i, m in enumerate(
                    _field(spec, "metrics", list, required=False, where="spec") or []
                )
            ),
            behavior=parsed_behavior,
        ),
        scale_target_ref=hpa.ObjectReference(
            kind=_field(target, "kind", str, where="spec.scaleTargetRef"),
            name=_field(target, "name", str, where="spec.scaleTargetRef"),
            api_version=_field(
                target, "apiVersion", str, required=False, where="spec.scaleTargetRef"
            )
            or "",
        ),
    )


def load_hpa(path: Path) -> hpa.HorizontalPodAutoscaler:
    """The one HPA in a YAML file (other documents, e.g. a Deployment, are skipped)."""
    try:
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    except (OSError, yaml.YAMLError) as error:
        raise ManifestError(f"{path}: {error}") from error
    hpas = [d for d in documents if isinstance(d, dict) and d.get("kind") == KIND]
    if len(hpas) != 1:
        raise ManifestError(f"{path}: expected exactly one {KIND}, found {len(hpas)}")
    try:
        return parse_hpa(hpas[0])
    except ManifestError as error:
        raise ManifestError(f"{path}: {error}") from error
