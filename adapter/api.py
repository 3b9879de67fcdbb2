"""The metrics APIs on the wire: URL grammar, discovery documents, list serialization.

Translates paths of ``custom.metrics.k8s.io`` (v1beta1 and v1beta2) and
``external.metrics.k8s.io`` (v1beta1) into provider queries, and provider values into the exact
JSON shapes of reference/custom-metrics-api.md sections 2, 3 and 5. Knows nothing about where the
numbers come from; raises ``ApiError`` for bad paths and selectors.

Pure: no aiohttp, no clock.
"""

from __future__ import annotations

import datetime
import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from adapter import errors, names, quantity, resources, selectors
from adapter.provider import (
    CustomMetricInfo,
    ExternalMetricValue,
    MetricValue,
    ObjectReference,
    PodValues,
    pod_reference,
)
from adapter.resources import PodRef

CUSTOM_GROUP = "custom.metrics.k8s.io"
EXTERNAL_GROUP = "external.metrics.k8s.io"
GROUP_VERSIONS = {CUSTOM_GROUP: ("v1beta2", "v1beta1"), EXTERNAL_GROUP: ("v1beta1",)}
"""Served versions per group, preferred first."""
WILDCARD = "*"


def _version_entry(group: str, version: str) -> dict[str, str]:
    return {"groupVersion": f"{group}/{version}", "version": version}


def _group(group: str) -> dict[str, Any]:
    versions = [_version_entry(group, v) for v in GROUP_VERSIONS[group]]
    return {"name": group, "versions": versions, "preferredVersion": versions[0]}


def api_group_list() -> dict[str, Any]:
    """``GET /apis``: both groups, v1beta2 preferred for custom metrics."""
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group(g) for g in GROUP_VERSIONS],
    }


def api_group(group: str) -> dict[str, Any]:
    """``GET /apis/{group}``."""
    if group not in GROUP_VERSIONS:
        raise errors.not_found(f"the server could not find the requested resource /apis/{group}")
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(group)}


def check_group_version(group: str, version: str) -> None:
    """Raise 404 unless ``group/version`` is served."""
    if version not in GROUP_VERSIONS.get(group, ()):
        raise errors.not_found(
            f"the server could not find the requested resource /apis/{group}/{version}"
        )


def custom_resource_list(version: str, infos: Iterable[CustomMetricInfo]) -> dict[str, Any]:
    """``GET /apis/custom.metrics.k8s.io/{version}``: one entry per (resource, metric)."""
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{CUSTOM_GROUP}/{version}",
        "resources": [
            {
                "name": str(info),
                "singularName": "",
                "namespaced": info.namespaced,
                "kind": "MetricValueList",
                "verbs": ["get"],
            }
            for info in infos
        ],
    }


def external_resource_list(metrics: Iterable[str]) -> dict[str, Any]:
    """``GET /apis/external.metrics.k8s.io/v1beta1``: every external metric, namespaced."""
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{EXTERNAL_GROUP}/v1beta1",
        "resources": [
            {
                "name": metric,
                "singularName": "",
                "namespaced": True,
                "kind": "ExternalMetricValueList",
                "verbs": ["get"],
            }
            for metric in metrics
        ],
    }


@dataclass(frozen=True)
class CustomQuery:
    """A parsed custom-metrics path: one object (``name``) or a selector (``name`` is None)."""

    info: CustomMetricInfo
    namespace: str | None
    name: str | None


def _check_namespace(namespace: str) -> str:
    problem = names.dns1123_label_error(namespace)
    if problem:
        raise errors.bad_request(f"invalid namespace {namespace!r}: {problem}")
    return namespace


def _check_object_name(name: str) -> str | None:
    if name == WILDCARD:
        return None
    problem = names.dns1123_subdomain_error(name)
    if problem:
        raise errors.bad_request(f"invalid object name {name!r}: {problem}")
    return name


def _scope(group_resource: str) -> bool | None:
    """Whether a resource is namespaced, or None for resources the adapter does not know
    (the provider answers those with a 404 that lists what it serves)."""
    known = resources.lookup(group_resource)
    return known.namespaced if known else None


def parse_custom_path(tail: str) -> CustomQuery:
    """Parse the part of a custom-metrics URL after ``/apis/custom.metrics.k8s.io/{version}/``.

    >>> parse_custom_path("namespaces/ml/pods/*/inference_queue_depth").name is None
    True
    """
    segments = tail.split("/")
    if any(not s for s in segments):
        raise errors.not_found(f"the server could not find the requested resource {tail!r}")
    if len(segments) == 4 and segments[0] == "namespaces" and segments[2] == "metrics":
        namespace = _check_namespace(segments[1])
        info = CustomMetricInfo(resources.NAMESPACES.group_resource, False, segments[3])
        return CustomQuery(info, None, namespace)
    if len(segments) == 5 and segments[0] == "namespaces":
        namespace = _check_namespace(segments[1])
        group_resource = resources.normalize(segments[2])
        if _scope(group_resource) is False:
            raise errors.bad_request(f"{group_resource} are not namespaced: use {group_resource}/")
        info = CustomMetricInfo(group_resource, True, segments[4])
        return CustomQuery(info, namespace, _check_object_name(segments[3]))
    if len(segments) == 3:
        group_resource = resources.normalize(segments[0])
        name = _check_object_name(segments[1])
        namespaced = _scope(group_resource)
        if namespaced and name is not None:
            raise errors.bad_request(
                f"{group_resource} are namespaced: use namespaces/{{namespace}}/{group_resource}/"
                f"{name}/{segments[2]}"
            )
        info = CustomMetricInfo(group_resource, bool(namespaced), segments[2])
        return CustomQuery(info, None, name)
    raise errors.not_found(f"the server could not find the requested resource {tail!r}")


def parse_external_path(tail: str) -> tuple[str, str]:
    """Parse ``namespaces/{ns}/{metric}`` into (namespace, metric)."""
    segments = tail.split("/")
    if len(segments) != 3 or segments[0] != "namespaces" or not all(segments):
        raise errors.not_found(f"the server could not find the requested resource {tail!r}")
    return _check_namespace(segments[1]), segments[2]


def parse_selector_param(text: str | None, parameter: str) -> selectors.Selector:
    """A selector query parameter; absent or empty selects everything; invalid is a 400."""
    if not text:
        return selectors.EVERYTHING
    try:
        return selectors.parse(text)
    except selectors.InvalidSelector as error:
        raise errors.bad_request(f"invalid {parameter} {text!r}: {error}") from error


@functools.lru_cache(maxsize=256)
def _format_second(second: int) -> str:
    moment = datetime.datetime.fromtimestamp(second, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def format_timestamp(unix_seconds: float) -> str:
    """RFC 3339 in UTC with seconds precision, as Go's ``metav1.Time`` marshals.

    Cached by second: a 1,000-pod answer holds a handful of distinct seconds.
    """
    return _format_second(int(unix_seconds))


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _object_json(reference: ObjectReference) -> str:
    """The ``describedObject`` JSON of one object."""
    described = {
        "kind": reference.kind,
        "name": reference.name,
        "apiVersion": reference.api_version,
    }
    if reference.namespace is not None:
        described["namespace"] = reference.namespace
    return _json(described)


_described_json = functools.lru_cache(maxsize=4096)(_object_json)
"""``_object_json``, kept for the objects answered one by one (Deployments, namespaces, single
pods); the pods of selector answers keep theirs in the skeletons."""


@functools.lru_cache(maxsize=256)
def _metric_json(version: str, metric: str, selector: selectors.Selector) -> tuple[str, str]:
    """The item text naming the metric (after ``describedObject``) and the text closing the
    item (after ``value``), for ``version``."""
    echoed = _json(selector.to_label_selector())
    if version == "v1beta1":
        return f',"metricName":{_json(metric)}', f',"selector":{echoed}}}'
    return f',"metric":{{"name":{_json(metric)},"selector":{echoed}}}', "}"


def _window_json(version: str, window_seconds: int | None) -> str:
    if window_seconds is None:
        return ""
    return f',"{"window" if version == "v1beta1" else "windowSeconds"}":{window_seconds}'


_format_value = functools.lru_cache(maxsize=4096, typed=True)(quantity.format_quantity)
"""Quantities repeat across pods and queries (small gauges, bins' representative latencies)."""


def custom_value_list(version: str, values: Iterable[MetricValue]) -> bytes:
    """A ``MetricValueList`` in the wire shape of ``version``, as the response body.

    Items are written from text templates rather than through ``json.dumps`` of a document:
    a 1,000-pod answer is about 250 KB, and building and encoding it as dicts cost three times
    what the provider spends computing the values. Every piece that comes from data (names, the
    metric, the selector echo) is JSON-encoded; timestamps and Quantities are plain ASCII.
    """
    if isinstance(values, PodValues):
        items = "".join(_pod_item_parts(version, values))
    else:
        items = ",".join(_items(version, values))
    return (
        f'{{"kind":"MetricValueList","apiVersion":"{CUSTOM_GROUP}/{version}","metadata":{{}}'
        f',"items":[{items}]}}'
    ).encode()


MAX_KEPT_SKELETONS = 16
"""Answer skeletons kept (``_pod_item_skeleton``): one per pod list, version, metric, metric
selector and window that HPAs ask for, the least recently asked dropped first; about 250 bytes
a pod each."""

_SkeletonKey = tuple[str, str, selectors.Selector, int | None, int, PodRef | None]
_skeletons: dict[_SkeletonKey, tuple[tuple[PodRef, ...], tuple[str, ...]]] = {}


def _pod_item_skeleton(version: str, values: PodValues) -> tuple[str, ...]:
    """The text of these pods' items with the timestamps and values left out: five pieces an
    item, the timestamp at 1 and the value at 3 (mod 5), kept while the pods are the same.

    Kept under the pods' count and first pod and checked against the whole list by comparison,
    which for the same pods is a pointer comparison each: hashing a thousand pods per query
    (as a cache key) read every one of them.
    """
    pods = tuple(values.pods)
    key = (
        version,
        values.metric,
        values.metric_selector,
        values.window_seconds,
        len(pods),
        pods[0] if pods else None,
    )
    kept = _skeletons.pop(key, None)
    if kept is None or kept[0] != pods:
        kept = (pods, _skeleton(version, values, pods))
        if len(_skeletons) >= MAX_KEPT_SKELETONS:
            del _skeletons[next(iter(_skeletons))]
    _skeletons[key] = kept  # last: the most recently asked
    return kept[1]


def _skeleton(version: str, values: PodValues, pods: tuple[PodRef, ...]) -> tuple[str, ...]:
    head, tail = _metric_json(version, values.metric, values.metric_selector)
    before_value = f'"{_window_json(version, values.window_seconds)},"value":"'
    after_value = f'"{tail}'
    parts: list[str] = []
    for pod in pods:
        parts += (
            f',{{"describedObject":{_object_json(pod_reference(pod))}{head},"timestamp":"',
            "",
            before_value,
            "",
            after_value,
        )
    if parts:
        parts[0] = parts[0][1:]  # no comma before the first item
    return tuple(parts)


def _timestamp_texts(timestamps: Sequence[float]) -> list[str]:
    """``format_timestamp`` of each (whole seconds, each second formatted once)."""
    return list(map(_format_second, map(int, timestamps)))


def _pod_item_parts(version: str, values: PodValues) -> list[str]:
    """The items of many pods' values as pieces of text to join, column by column.

    The same pods answer query after query, so everything but their timestamps and values is
    a kept skeleton; those two columns are formatted together (``format_quantities``) and
    slotted in by slice assignment. A cold 1,000-pod answer then does no Python work per item
    beyond formatting its two numbers (building the items one by one cost ~1.8 ms of it).
    """
    parts = list(_pod_item_skeleton(version, values))
    parts[1::5] = _timestamp_texts(values.timestamps)
    parts[3::5] = quantity.format_quantities(values.values, _format_value)
    return parts


def _items(version: str, values: Iterable[MetricValue]) -> list[str]:
    """The items of values one by one (objects, single pods)."""
    items = []
    key: tuple[str, selectors.Selector, int | None] | None = None
    head = tail = window = ""
    for value in values:
        if key is None or value.metric is not key[0] or value.metric_selector is not key[1]:
            head, tail = _metric_json(version, value.metric, value.metric_selector)
        if key is None or value.window_seconds != key[2]:
            window = _window_json(version, value.window_seconds)
        key = (value.metric, value.metric_selector, value.window_seconds)
        items.append(
            f'{{"describedObject":{_described_json(value.described_object)}{head}'
            f',"timestamp":"{format_timestamp(value.timestamp)}"{window}'
            f',"value":"{_format_value(value.value)}"{tail}'
        )
    return items


def external_value_list(values: Sequence[ExternalMetricValue]) -> dict[str, Any]:
    """An ``ExternalMetricValueList``."""
    items = []
    for value in values:
        item: dict[str, Any] = {
            "metricName": value.metric,
            "metricLabels": dict(value.labels),
            "timestamp": format_timestamp(value.timestamp),
        }
        if value.window_seconds is not None:
            item["window"] = value.window_seconds
        item["value"] = quantity.format_quantity(value.value)
        items.append(item)
    return {
        "kind": "ExternalMetricValueList",
        "apiVersion": f"{EXTERNAL_GROUP}/v1beta1",
        "metadata": {},
        "items": items,
    }


OPENAPI_V2 = {
    "swagger": "2.0",
    "info": {"title": "inference-metrics-adapter", "version": "v0.1.0"},
    "paths": {},
}
"""A minimal valid Swagger document, so older kube-apiservers stop logging its absence."""
