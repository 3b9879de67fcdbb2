"""Read ``autoscaling/v2`` HorizontalPodAutoscaler YAML into the HPA math's dataclasses.

The same files a cluster gets (``apiservice/examples/``) drive the local controller, so what the
demo shows is what the real HPA would do with that manifest. Quantities become milli-units the
way the controller reads them (``MilliValue()``, rounding up). Anything the API server would
reject is a ``ManifestError`` whose one-line message names the field.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from adapter import quantity
from localcluster import hpa, scaling

API_VERSION = "autoscaling/v2"
KIND = "HorizontalPodAutoscaler"


class ManifestError(ValueError):
    """A manifest the API server would not accept, or one that is not an HPA.

    ``field`` is the offending field's path (``spec.metrics[1].pods.target``) when one is to
    blame; ``load_hpa`` turns it into a line of the file.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


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
                raise ManifestError(f"{full} is required", full)
            return None
        node = node[key]
    if not isinstance(node, kind) or (isinstance(node, bool) and bool not in _tuple(kind)):
        raise ManifestError(f"{full} has the wrong type ({type(node).__name__})", full)
    return node


def _tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _milli(value: Any, path: str) -> int:
    try:
        return quantity.milli_value(quantity.parse_quantity(str(value)))
    except ValueError as error:
        raise ManifestError(f"{path}: {error}", path) from error


def _fraction(value: Any, path: str) -> float:
    """A Quantity as a float (a tolerance such as ``50m``)."""
    try:
        return float(quantity.parse_quantity(str(value)))
    except ValueError as error:
        raise ManifestError(f"{path}: {error}", path) from error


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
        selector=_selector(
            _field(metric, "selector", dict, required=False, where=metric_path),
            f"{metric_path}.selector",
        ),
        described_object=described,
    )


def _selector(raw: dict[str, Any] | None, path: str) -> dict[str, Any] | None:
    """A metric's selector as a ``metav1.LabelSelector`` decodes: string labels, expressions of
    a string key and operator and a list of string values. What they mean (a known operator, a
    valid key) is judged when the HPA uses the selector, as upstream does."""
    if raw is None:
        return None
    labels = _field(raw, "matchLabels", dict, required=False, where=path)
    for key, value in (labels or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ManifestError(
                f"{path}.matchLabels: {key!r}: {value!r}: labels and their values are strings",
                f"{path}.matchLabels",
            )
    expressions = _field(raw, "matchExpressions", list, required=False, where=path)
    for index, expression in enumerate(expressions or []):
        where = f"{path}.matchExpressions[{index}]"
        if not isinstance(expression, dict):
            raise ManifestError(f"{where} has the wrong type ({type(expression).__name__})", where)
        _field(expression, "key", str, required=False, where=where)
        _field(expression, "operator", str, required=False, where=where)
        values = _field(expression, "values", list, required=False, where=where)
        if not all(isinstance(value, str) for value in values or ()):
            raise ManifestError(f"{where}.values: the values are strings", f"{where}.values")
    return raw


def _rules(raw: Any, path: str) -> scaling.ScalingRules | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ManifestError(f"{path} has the wrong type ({type(raw).__name__})", path)
    policies = _field(raw, "policies", list, required=False, where=path)
    tolerance = raw.get("tolerance")
    return scaling.ScalingRules(
        stabilization_window_seconds=_field(
            raw, "stabilizationWindowSeconds", int, required=False, where=path
        ),
        select_policy=_field(raw, "selectPolicy", str, required=False, where=path),
        policies=None
        if policies is None
        else tuple(_policy(p, f"{path}.policies[{i}]") for i, p in enumerate(policies)),
        tolerance=None if tolerance is None else _fraction(tolerance, f"{path}.tolerance"),
    )


def _policy(raw: Any, path: str) -> scaling.ScalingPolicy:
    if not isinstance(raw, dict):
        raise ManifestError(f"{path} has the wrong type ({type(raw).__name__})", path)
    return scaling.ScalingPolicy(
        _field(raw, "type", str, where=path),
        _field(raw, "value", int, where=path),
        _field(raw, "periodSeconds", int, where=path),
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
    behavior = _field(spec, "behavior", dict, required=False, where="spec")
    parsed_behavior = (
        None
        if behavior is None
        else scaling.Behavior(
            scale_up=_rules(behavior.get("scaleUp"), "spec.behavior.scaleUp"),
            scale_down=_rules(behavior.get("scaleDown"), "spec.behavior.scaleDown"),
        )
    )
    parsed = hpa.HorizontalPodAutoscaler(
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
    validate(parsed)
    return parsed


_SELECT_POLICIES = (scaling.SELECT_MAX, scaling.SELECT_MIN, scaling.SELECT_DISABLED)
_POLICY_TYPES = (scaling.PODS_POLICY, scaling.PERCENT_POLICY)
_MAX_STABILIZATION_SECONDS = 3600
_MAX_PERIOD_SECONDS = 1800


def _check(ok: bool, field: str, message: str) -> None:
    if not ok:
        raise ManifestError(f"{field}: {message}", field)


def _validate_rules(rules: scaling.ScalingRules | None, path: str) -> None:
    if rules is None:
        return
    window = rules.stabilization_window_seconds
    _check(
        window is None or 0 <= window <= _MAX_STABILIZATION_SECONDS,
        f"{path}.stabilizationWindowSeconds",
        f"must be between 0 and {_MAX_STABILIZATION_SECONDS} seconds",
    )
    _check(
        rules.select_policy is None or rules.select_policy in _SELECT_POLICIES,
        f"{path}.selectPolicy",
        f"must be one of {', '.join(_SELECT_POLICIES)}",
    )
    _check(rules.policies != (), f"{path}.policies", "must specify at least one Policy")
    for index, policy in enumerate(rules.policies or ()):
        where = f"{path}.policies[{index}]"
        _check(
            policy.type in _POLICY_TYPES, f"{where}.type", f"must be {' or '.join(_POLICY_TYPES)}"
        )
        _check(policy.value > 0, f"{where}.value", "must be greater than zero")
        _check(
            0 < policy.period_seconds <= _MAX_PERIOD_SECONDS,
            f"{where}.periodSeconds",
            f"must be between 1 and {_MAX_PERIOD_SECONDS} seconds",
        )
    _check(
        rules.tolerance is None or rules.tolerance >= 0,
        f"{path}.tolerance",
        "must be greater than or equal to 0",
    )


_TARGET_TYPES = {
    hpa.RESOURCE: (hpa.UTILIZATION, hpa.AVERAGE_VALUE),
    hpa.PODS: (hpa.AVERAGE_VALUE,),
    hpa.OBJECT: (hpa.VALUE, hpa.AVERAGE_VALUE),
    hpa.EXTERNAL: (hpa.VALUE, hpa.AVERAGE_VALUE),
}


def _validate_metric(metric: hpa.MetricSpec, index: int) -> None:
    source = metric.type[:1].lower() + metric.type[1:]
    path = f"spec.metrics[{index}]"
    _check(
        metric.type in _TARGET_TYPES,
        f"{path}.type",
        f"must be one of {', '.join(_TARGET_TYPES)}",
    )
    target, where = metric.target, f"{path}.{source}.target"
    allowed = _TARGET_TYPES[metric.type]
    _check(target.type in allowed, f"{where}.type", f"must be {' or '.join(allowed)}")
    value = {
        hpa.UTILIZATION: (target.average_utilization, "averageUtilization"),
        hpa.AVERAGE_VALUE: (target.average_value_milli, "averageValue"),
        hpa.VALUE: (target.value_milli, "value"),
    }[target.type]
    _check(value[0] is not None, f"{where}.{value[1]}", f"is required for type {target.type}")
    _check(value[0] is None or value[0] > 0, f"{where}.{value[1]}", "must be positive")


def validate(autoscaler: hpa.HorizontalPodAutoscaler) -> None:
    """What the API server's validation of an ``autoscaling/v2`` HPA rejects among the fields
    the emulation reads: replica bounds, metric targets, behavior rules. Raises
    ``ManifestError`` naming the first bad field."""
    spec = autoscaler.spec
    minimum = 1 if spec.min_replicas is None else spec.min_replicas
    _check(minimum >= 1, "spec.minReplicas", "must be greater than or equal to 1")
    _check(
        spec.max_replicas >= minimum,
        "spec.maxReplicas",
        "must be greater than or equal to minReplicas",
    )
    for index, metric in enumerate(spec.metrics):
        _validate_metric(metric, index)
    if spec.behavior is not None:
        _validate_rules(spec.behavior.scale_up, "spec.behavior.scaleUp")
        _validate_rules(spec.behavior.scale_down, "spec.behavior.scaleDown")


def field_line(text: str, field: str) -> int | None:
    """The line (1-based) in ``text`` where ``field`` of its HPA document is written.

    ``field`` is a path as errors name it (``spec.metrics[1].pods.target``); a field that is
    missing is placed at its closest written parent. None when ``text`` holds no HPA.

    >>> field_line("kind: HorizontalPodAutoscaler\nspec:\n  maxReplicas: x\n",
    ...            "spec.maxReplicas")
    3
    """
    try:
        documents = list(yaml.compose_all(text))
    except yaml.YAMLError:
        return None
    for node in documents:
        if isinstance(node, yaml.MappingNode) and any(
            k.value == "kind" and getattr(v, "value", None) == KIND for k, v in node.value
        ):
            break
    else:
        return None
    line = node.start_mark.line
    for key in field_keys(field):
        child = _child(node, key)
        if child is None:
            break
        line, node = child
    return line + 1


def field_keys(field: str) -> list[str | int]:
    """A field path's keys: ``spec.metrics[1].pods`` is ``["spec", "metrics", 1, "pods"]``."""
    keys: list[str | int] = []
    for part in field.split("."):
        name, _, rest = part.partition("[")
        keys.append(name)
        keys += [int(index) for index in rest.replace("]", "").split("[") if index.isdigit()]
    return keys


def _child(node: yaml.Node, key: str | int) -> tuple[int, yaml.Node] | None:
    """The line of ``key`` in ``node`` and the node it holds."""
    if isinstance(node, yaml.MappingNode) and isinstance(key, str):
        for key_node, value in node.value:
            if key_node.value == key:
                return key_node.start_mark.line, value
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
        item = node.value[key]
        return item.start_mark.line, item
    return None


def load_hpa(
    path: Path,
    *,
    edit: Callable[[dict[str, Any]], None] | None = None,
    check: Callable[[hpa.HorizontalPodAutoscaler], None] | None = None,
) -> hpa.HorizontalPodAutoscaler:
    """The one HPA in a YAML file (other documents, e.g. a Deployment, are skipped).

    ``edit`` may change the decoded document before it is parsed (the simulator's sweeps) and
    ``check`` may reject the parsed HPA with a ``ManifestError`` of its own. Every error names
    the file, and the line of the field at fault when there is one:
    ``hpa.yaml: line 12: spec.maxReplicas has the wrong type (str)``.
    """
    try:
        text = path.read_text()
        documents = [d for d in yaml.safe_load_all(text) if d]
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as error:
        raise ManifestError(f"{path}: {_one_line(error)}") from error
    hpas = [d for d in documents if isinstance(d, dict) and d.get("kind") == KIND]
    if len(hpas) != 1:
        raise ManifestError(f"{path}: expected exactly one {KIND}, found {len(hpas)}")
    try:
        if edit is not None:
            edit(hpas[0])
        parsed = parse_hpa(hpas[0])
        if check is not None:
            check(parsed)
    except ManifestError as error:
        line = None if error.field is None else field_line(text, error.field)
        where = "" if line is None else f"line {line}: "
        raise ManifestError(f"{path}: {where}{error}", error.field) from error
    return parsed


def _one_line(error: Exception) -> str:
    """A YAML or OS error on one line (PyYAML's span several, with a caret)."""
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        return f"line {mark.line + 1}: {error.problem or error.context}"
    return " ".join(str(error).split())
