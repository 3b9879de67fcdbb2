"""What ``inference-adapter simulate`` accepts besides plain flags, checked before any run.

- HPA manifests: valid ``autoscaling/v2`` (``localcluster.manifests``), scaling a Deployment,
  on metrics this adapter serves, read where the simulated adapter can answer them (Pods
  metrics, the scale target Deployment or the Namespace as described object, External). An
  error names the file, the line and the field.
- ``--sweep KEY=V1,V2,...``: KEY is a metric the manifests scale on (each value becomes its
  target, in the target's own type), a field of the manifests (``spec.maxReplicas``,
  ``spec.behavior.scaleDown.stabilizationWindowSeconds``), or a simulate option without its
  dashes (``max-concurrency``, ``startup-delay``, ``tolerance``...).
- ``--startup-delay``: a duration (``20s``) or a distribution in the ``--service-time`` syntax
  (``lognormal:20s,0.3``).

Pure but for reading the manifest files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from adapter import catalog, durations
from localcluster import hpa, manifests
from localcluster.metrics_client import resource_for
from model_server.service_time import ServiceTime, parse_distribution

SWEEP_FIELD_PREFIX = "spec."


class InvalidInput(ValueError):
    """Input the simulator cannot use; the message is one line naming it."""


def parse_startup_delay(text: str) -> ServiceTime:
    """``20s`` (always that long) or ``constant:20s``, ``exponential:20s``, ``lognormal:20s,0.3``.

    >>> parse_startup_delay("20s")
    ServiceTime(kind='constant', scale_seconds=20.0, sigma=0.0)
    """
    if ":" not in text:
        try:
            return ServiceTime("constant", durations.parse_duration(text))
        except durations.InvalidDuration as error:
            raise InvalidInput(str(error)) from None
    try:
        return parse_distribution(text)
    except ValueError as error:
        raise InvalidInput(str(error)) from None


def check_simulatable(autoscaler: hpa.HorizontalPodAutoscaler) -> None:
    """Reject (``ManifestError`` naming the field) what the simulation cannot run: a target
    other than a Deployment, CPU or memory metrics (pods have no CPU model), metrics the
    adapter does not serve, and objects the standalone adapter cannot describe."""
    target = autoscaler.scale_target_ref
    if target is None or target.kind != "Deployment":
        raise manifests.ManifestError(
            "spec.scaleTargetRef.kind: only a Deployment is simulated",
            "spec.scaleTargetRef.kind",
        )
    if not autoscaler.spec.metrics:
        raise manifests.ManifestError(
            "spec.metrics: none given, so the HPA would scale on CPU, which is not simulated",
            "spec.metrics",
        )
    for index, metric in enumerate(autoscaler.spec.metrics):
        _check_metric(metric, f"spec.metrics[{index}]", target)


def _check_metric(metric: hpa.MetricSpec, path: str, target: hpa.ObjectReference) -> None:
    source = f"{path}.{metric.type[:1].lower()}{metric.type[1:]}"
    if metric.type == hpa.RESOURCE:
        raise manifests.ManifestError(
            f"{source}: {metric.resource} is a resource metric; the simulated pods have no CPU"
            " or memory model, only the adapter's metrics",
            source,
        )
    if metric.metric_name not in catalog.BY_NAME:
        raise manifests.ManifestError(
            f"{source}.metric.name: the adapter does not serve {metric.metric_name!r}"
            f" (it serves {', '.join(catalog.NAMES)})",
            f"{source}.metric.name",
        )
    described = metric.described_object
    if metric.type != hpa.OBJECT or described is None:
        return
    is_namespace = described.kind == "Namespace" and described.api_version in ("", "v1")
    is_target = resource_for(described) == "deployments.apps" and described.name == target.name
    if not (is_namespace or is_target):
        raise manifests.ManifestError(
            f"{source}.describedObject: the simulation answers for Deployment {target.name}"
            f" (the scale target) and the Namespace, not {described.kind} {described.name}",
            f"{source}.describedObject",
        )


def load_manifest(
    path: Path, edit: Callable[[dict[str, Any]], None] | None = None
) -> hpa.HorizontalPodAutoscaler:
    """A manifest to simulate; ``InvalidInput`` naming file, line and field otherwise."""
    try:
        return manifests.load_hpa(path, edit=edit, check=check_simulatable)
    except manifests.ManifestError as error:
        raise InvalidInput(str(error)) from None


@dataclass(frozen=True)
class Sweep:
    """``--sweep KEY=V1,V2,...``: one run per value."""

    key: str
    values: tuple[str, ...]

    @property
    def is_metric(self) -> bool:
        return self.key in catalog.BY_NAME

    @property
    def is_field(self) -> bool:
        return self.key.startswith(SWEEP_FIELD_PREFIX)

    @property
    def is_option(self) -> bool:
        return not (self.is_metric or self.is_field)

    def edit(self, value: str) -> Callable[[dict[str, Any]], None] | None:
        """The change ``value`` makes to a manifest (None when KEY is an option)."""
        if self.is_metric:
            return lambda document: _set_target(document, self.key, value)
        if self.is_field:
            return lambda document: _set_field(document, self.key, value)
        return None


def parse_sweep(text: str, options: Sequence[str]) -> Sweep:
    """``KEY=V1,V2,...`` into a ``Sweep``; ``options`` are the flags KEY may name.

    >>> parse_sweep("inference_concurrency=2,3,4", []).values
    ('2', '3', '4')
    """
    key, separator, values_text = text.partition("=")
    key = key.strip().removeprefix("--")
    values = tuple(v.strip() for v in values_text.split(","))
    if not separator or not key or not all(values):
        raise InvalidInput(
            f"--sweep {text!r}: expected KEY=V1,V2,... (e.g. inference_concurrency=2,3,4)"
        )
    sweep = Sweep(key, values)
    if sweep.is_option and key not in options:
        raise InvalidInput(
            f"--sweep {text!r}: {key!r} is not a metric the adapter serves, a manifest field"
            " (spec....) or a simulate option"
        )
    if len(set(values)) != len(values):
        raise InvalidInput(f"--sweep {text!r}: a value is repeated")
    return sweep


def _set_target(document: dict[str, Any], metric_name: str, value: str) -> None:
    """Set the target of every metric named ``metric_name`` to ``value``."""
    found = False
    for index, metric in enumerate(_items(document, "spec.metrics")):
        source = metric.get(str(metric.get("type", ""))[:1].lower() + str(metric.get("type"))[1:])
        if not isinstance(source, dict) or (source.get("metric") or {}).get("name") != metric_name:
            continue
        target = source.get("target")
        if not isinstance(target, dict):
            raise manifests.ManifestError(
                f"spec.metrics[{index}]: no target to sweep", f"spec.metrics[{index}]"
            )
        key = {"AverageValue": "averageValue", "Value": "value"}.get(target.get("type"))
        if key is None:
            raise manifests.ManifestError(
                f"spec.metrics[{index}]: a {target.get('type')} target cannot be swept",
                f"spec.metrics[{index}]",
            )
        target[key] = value
        found = True
    if not found:
        raise manifests.ManifestError(f"--sweep: no metric {metric_name} in spec.metrics", "spec")


def _items(document: dict[str, Any], path: str) -> list[dict[str, Any]]:
    node: Any = document
    for key in path.split("."):
        node = node.get(key) if isinstance(node, dict) else None
    return [item for item in node or [] if isinstance(item, dict)]


def _set_field(document: dict[str, Any], path: str, value: str) -> None:
    """Set ``path`` (dotted, ``[i]`` for list items) to ``value`` read as YAML (so ``300`` is
    a number and ``500m`` a string), creating missing mappings on the way."""
    keys = manifests.field_keys(path)
    node: Any = document
    for position, key in enumerate(keys[:-1]):
        following = keys[position + 1]
        if isinstance(key, int):
            if not isinstance(node, list) or key >= len(node):
                raise manifests.ManifestError(f"--sweep: {path}: no item {key}", path)
            node = node[key]
        else:
            if not isinstance(node, dict):
                raise manifests.ManifestError(f"--sweep: {path} is not a field", path)
            node = node.setdefault(key, [] if isinstance(following, int) else {})
    last = keys[-1]
    if isinstance(last, int) or not isinstance(node, dict):
        raise manifests.ManifestError(f"--sweep: {path} is not a field", path)
    try:
        node[last] = yaml.safe_load(value)
    except yaml.YAMLError:
        raise manifests.ManifestError(
            f"--sweep: {path}: {value!r} is not a YAML value", path
        ) from None
