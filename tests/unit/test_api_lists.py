"""``api.custom_value_list``: the text templates write what ``json.dumps`` of the document would,
for values one by one and for a pod selector's column-wise ``PodValues`` alike."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapter import api, quantity, selectors
from adapter.provider import MetricValue, ObjectReference, PodValues
from adapter.resources import PodRef

pod_names = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True)
metric_values = st.one_of(
    st.floats(min_value=0, max_value=1e6, allow_nan=False),  # latencies, rates
    st.integers(min_value=0, max_value=10**6).map(float),  # gauges
    st.builds(lambda nanos: nanos * 1e-9, st.integers(min_value=1, max_value=10**12)),
)
metric_selectors = st.sampled_from(
    [selectors.EVERYTHING, selectors.parse("deployment=model"), selectors.parse("a in (x,y),!b")]
)


def document(version: str, values: list[MetricValue]) -> dict[str, Any]:
    """The MetricValueList as the spec (sections 3.2, 6) writes it, built as plain dicts."""
    items = []
    for value in values:
        reference = value.described_object
        described = {
            "kind": reference.kind,
            "name": reference.name,
            "apiVersion": reference.api_version,
        }
        if reference.namespace is not None:
            described["namespace"] = reference.namespace
        echoed = value.metric_selector.to_label_selector()
        item: dict[str, Any] = {"describedObject": described}
        if version == "v1beta1":
            item["metricName"] = value.metric
        else:
            item["metric"] = {"name": value.metric, "selector": echoed}
        item["timestamp"] = api.format_timestamp(value.timestamp)
        if value.window_seconds is not None:
            item["window" if version == "v1beta1" else "windowSeconds"] = value.window_seconds
        item["value"] = quantity.format_quantity(value.value)
        if version == "v1beta1":
            item["selector"] = echoed
        items.append(item)
    return {
        "kind": "MetricValueList",
        "apiVersion": f"custom.metrics.k8s.io/{version}",
        "metadata": {},
        "items": items,
    }


@settings(max_examples=200)
@given(
    version=st.sampled_from(["v1beta1", "v1beta2"]),
    namespace=pod_names,
    names=st.lists(pod_names, max_size=12),
    data=st.data(),
    window=st.sampled_from([None, 30]),
    metric_selector=metric_selectors,
)
def test_pod_values_are_written_as_json_dumps_writes_the_document(
    version, namespace, names, data, window, metric_selector
):
    numbers = data.draw(st.lists(metric_values, min_size=len(names), max_size=len(names)))
    stamps = data.draw(
        st.lists(
            st.floats(min_value=1.7e9, max_value=1.9e9),
            min_size=len(names),
            max_size=len(names),
        )
    )
    pods = [PodRef(namespace, name) for name in names]
    columns = PodValues(
        "inference_latency_p99_seconds", pods, numbers, stamps, window, metric_selector
    )
    rows = list(columns)
    assert rows == [
        MetricValue(
            ObjectReference("Pod", "v1", pod.name, pod.namespace),
            "inference_latency_p99_seconds",
            number,
            stamp,
            window,
            metric_selector,
        )
        for pod, number, stamp in zip(pods, numbers, stamps, strict=True)
    ]
    expected = json.dumps(document(version, rows), separators=(",", ":")).encode()
    assert api.custom_value_list(version, columns) == expected
    assert api.custom_value_list(version, rows) == expected


def test_pod_values_slice_and_length():
    pods = [PodRef("ns", f"p{i}") for i in range(5)]
    columns = PodValues("m", pods, [0.5] * 5, [1.8e9] * 5)
    assert len(columns) == 5
    assert [v.described_object.name for v in columns[1:4]] == ["p1", "p2", "p3"]
    assert columns[-1].described_object.name == "p4"
    assert columns == list(columns), "not equal to the list it stands for"
    assert columns != list(columns)[:-1]
    assert repr(columns) == "PodValues('m', 5 pods)"
    with pytest.raises(ValueError):
        PodValues("m", pods, [0.5] * 4, [1.8e9] * 5)


def test_a_kept_skeleton_is_never_used_for_other_pods_with_the_same_first_pod_and_count():
    def answer(*names: str) -> list[str]:
        pods = [PodRef("ns", name) for name in names]
        columns = PodValues("m", pods, [0.5] * len(pods), [1.8e9] * len(pods))
        body = json.loads(api.custom_value_list("v1beta2", columns))
        return [item["describedObject"]["name"] for item in body["items"]]

    assert answer("a", "b", "c") == ["a", "b", "c"]
    assert answer("a", "x", "c") == ["a", "x", "c"]
    assert answer("a", "b", "c") == ["a", "b", "c"]
