"""Tests for adapter.push: decoding a push body into a Report, and refusing every bad one.

Each rejection is checked for its exact status code and for the ``field_path`` it names; the
properties at the end feed the decoder random bytes, random JSON, hostile mutations of a valid
body and random valid reports.
"""

import copy
import datetime
import json
import typing
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapter import push, sketch
from adapter.client import Contents, PodIdentity, encode_report
from adapter.client.pusher import encode
from adapter.config import PushConfig
from adapter.errors import ApiError
from adapter.report import (
    CONCURRENCY,
    FRACTIONS,
    GAUGE_NAMES,
    KV_CACHE_UTILIZATION,
    QUEUE_DEPTH,
    SIGNAL_NAMES,
    SKETCH_NAMES,
    Owner,
    Report,
    Sketch,
    Source,
)
from adapter.resources import PodRef
from adapter.sketch import LatencySketch

LIMITS = PushConfig()
PROPERTY = {"derandomize": True, "database": None, "deadline": None}
"""Hypothesis settings shared by the properties: seeded, no example database, no deadline."""

VALID: dict[str, Any] = {
    "pod": {
        "namespace": "inference",
        "name": "model-7d4b9c-x2k8p",
        "uid": "5f0c2a9e-1d3b-4c5d-9e8f-0a1b2c3d4e5f",
        "labels": {"app": "model", "example.com/tier": "gpu", "empty": ""},
        "owner": {"kind": "Deployment", "name": "model"},
    },
    "seq": 17,
    "timestamp": "2026-11-28T15:00:00.123Z",
    "gauges": {"inference_queue_depth": 3, "inference_concurrency": 7.5},
    "latency": {"relative_accuracy": 0.01, "zero_count": 2, "bins": {"-230": 3, "-229": 10}},
}
VALID_TIMESTAMP = datetime.datetime(2026, 11, 28, 15, 0, 0, 123000, datetime.UTC).timestamp()
RELAYED: dict[str, Any] = {
    **VALID,
    "gauges": {"inference_queue_depth": 3, "inference_kv_cache_utilization": 0.25},
    "latency": {**VALID["latency"], "counts_per_request": 1024},
    "time_to_first_token": {
        "relative_accuracy": 0.01,
        "bins": {"-300": 1024, "-299": 2048},
        "counts_per_request": 1024,
    },
    "service_time": {"relative_accuracy": 0.01, "bins": {"-200": 2}},
    "requests": 4,
    "latency_mean": {"sum": 1.5, "count": 3},
    "source": {
        "preset": "vllm",
        "missing": {"inference_concurrency": "vllm:num_requests_running is not in the metrics"},
        "buckets": {"latency": [0.3, 0.5, 1], "time_to_first_token": [0.001, 0.01]},
    },
}
"""A relay's report: every optional field the contract gained for real servers."""

DELETE = object()
"""Marks a field to remove in ``changed``."""


def body(document: Any) -> bytes:
    return json.dumps(document).encode()


def changed(path: tuple[str, ...], value: Any, base: dict[str, Any] = VALID) -> dict[str, Any]:
    """A deep copy of ``base`` with the field at ``path`` set to ``value`` (or removed:
    DELETE)."""
    document = copy.deepcopy(base)
    *parents, last = path
    container = document
    for key in parents:
        container = container[key]
    if value is DELETE:
        del container[last]
    else:
        container[last] = value
    return document


def decode(raw: bytes, limits: PushConfig = LIMITS) -> Report:
    return push.decode_report(raw, limits)


def rejection(raw: bytes, limits: PushConfig = LIMITS) -> ApiError:
    with pytest.raises(ApiError) as caught:
        decode(raw, limits)
    return caught.value


# --- a valid body ---------------------------------------------------------------------------


VALID_REPORT = Report(
    pod=PodRef("inference", "model-7d4b9c-x2k8p"),
    uid="5f0c2a9e-1d3b-4c5d-9e8f-0a1b2c3d4e5f",
    seq=17,
    labels={"app": "model", "example.com/tier": "gpu", "empty": ""},
    owner=Owner("Deployment", "model"),
    pod_timestamp=VALID_TIMESTAMP,
    gauges={QUEUE_DEPTH: 3.0, CONCURRENCY: 7.5},
    latency_bins={-230: 3, -229: 10},
    latency_zero_count=2,
)


def test_valid_body_decodes_every_field():
    assert decode(body(VALID)) == VALID_REPORT


def test_valid_body_types_are_normalized():
    report = decode(body(VALID))
    assert all(type(v) is float for v in report.gauges.values())
    assert all(type(k) is int for k in report.latency_bins)
    assert report.completed_requests == 15


def test_minimal_body_has_defaults():
    report = decode(body({"pod": {"namespace": "ns", "name": "p"}, "seq": 1}))
    assert report == Report(pod=PodRef("ns", "p"), uid="", seq=1)
    assert report.completed_requests == 0


def test_the_gauge_type_of_the_fast_path_names_every_gauge():
    assert typing.get_args(push._GaugeName) == GAUGE_NAMES
    assert typing.get_args(push._SignalName) == SIGNAL_NAMES
    assert typing.get_args(push._SketchName) == SKETCH_NAMES


def test_a_relayed_body_decodes_every_field():
    report = decode(body(RELAYED))
    assert report == VALID_REPORT._replace(
        gauges={QUEUE_DEPTH: 3.0, KV_CACHE_UTILIZATION: 0.25},
        latency_counts_per_request=1024,
        sketches={
            "time_to_first_token": Sketch({-300: 1024, -299: 2048}, 0, 1024),
            "service_time": Sketch({-200: 2}, 0, 1),
        },
        requests=4,
        latency_mean=(1.5, 3),
        source=Source(
            "vllm",
            {"inference_concurrency": "vllm:num_requests_running is not in the metrics"},
            {"latency": (0.3, 0.5, 1.0), "time_to_first_token": (0.001, 0.01)},
        ),
    )
    assert report.completed_requests == 4
    assert push._decode_fast(body(RELAYED), LIMITS, None) == report
    without_requests = decode(body(changed(("requests",), DELETE, RELAYED)))
    assert without_requests.completed_requests == 15 // 1024  # counts over counts per request


@pytest.mark.parametrize(
    ("path", "value", "field_path"),
    [
        (
            ("gauges", "inference_kv_cache_utilization"),
            1.01,
            "gauges.inference_kv_cache_utilization",
        ),
        (("latency", "counts_per_request"), 3, "latency.counts_per_request"),
        (("latency", "counts_per_request"), 2048, "latency.counts_per_request"),
        (("latency", "counts_per_request"), 0, "latency.counts_per_request"),
        (
            ("time_to_first_token", "relative_accuracy"),
            0.02,
            "time_to_first_token.relative_accuracy",
        ),
        (("time_to_first_token", "bins", "x"), 1, "time_to_first_token.bins['x']"),
        (("service_time", "zero_count"), -1, "service_time.zero_count"),
        (("requests",), -1, "requests"),
        (("requests",), 1.5, "requests"),
        (("latency_mean",), 2.0, "latency_mean"),
        (("latency_mean", "count"), DELETE, "latency_mean.count"),
        (("latency_mean", "sum"), -0.5, "latency_mean.sum"),
        (("latency_mean", "sum"), "1", "latency_mean.sum"),
        (("latency_mean", "count"), 0, "latency_mean.sum"),
        (("latency_mean", "extra"), 1, "latency_mean.extra"),
        (("source", "preset"), DELETE, "source.preset"),
        (("source", "preset"), "vLLM", "source.preset"),
        (("source", "preset"), "a" * 64, "source.preset"),
        (("source", "missing", "gpu_temperature"), "hot", "source.missing.gpu_temperature"),
        (("source", "missing", "latency"), "", "source.missing.latency"),
        (("source", "missing", "latency"), "x" * 301, "source.missing.latency"),
        (("source", "missing", "latency"), "two\nlines", "source.missing.latency"),
        (("source", "buckets", "latency"), [0.5, 0.3], "source.buckets.latency"),
        (("source", "buckets", "latency"), [0, 0.3], "source.buckets.latency"),
        (("source", "buckets", "latency"), list(range(1, 130)), "source.buckets.latency"),
        # an integer beyond float range (a 500 once); integers that round to the same float
        (("source", "buckets", "latency"), [1, 10**400], "source.buckets.latency"),
        (("source", "buckets", "latency"), [2**53, 2**53 + 1], "source.buckets.latency"),
        (("source", "buckets", "queue"), [1], "source.buckets.queue"),
    ],
)
def test_a_wrong_relayed_field_is_422_naming_it(path, value, field_path):
    raw = body(changed(path, value, RELAYED))
    error = rejection(raw)
    assert (error.code, error.field_path) == (422, field_path), error.message
    assert push._decode_fast(raw, LIMITS, None) is None


@settings(max_examples=300, **PROPERTY)
@given(st.data())
def test_hostile_mutations_of_a_relayed_body_decode_or_name_the_field(data):
    document, mutated = data.draw(mutations(RELAYED))
    error = assert_decodes_or_4xx(body(document))
    if error is not None:
        assert error.code == 422
        assert names_the_field(error.field_path, mutated), (error.field_path, mutated)


def test_relayed_contents_round_trip():
    """What the relay's client sends decodes, on the fast path, to the same numbers."""
    identity = PodIdentity("llm", "vllm-0", "uid-1", {"app": "vllm"}, deployment="vllm")
    latencies = LatencySketch.from_bins({-60: 2048, -59: 1024})
    contents = Contents(
        gauges={QUEUE_DEPTH: 2.0, KV_CACHE_UTILIZATION: 0.5},
        sketches={"latency": latencies, "time_to_first_token": LatencySketch.empty()},
        units_per_request=1024,
        requests=3,
        latency_mean=(1.75, 3),
        source=Source("vllm", {"inference_concurrency": "gone"}, {"latency": (0.3, 0.5)}),
    )
    raw = json.dumps(encode(identity, 9, contents, 1.8e9)).encode()
    report = push._decode_fast(raw, LIMITS, None)
    assert report is not None and report == push._decode_checked(raw, LIMITS)
    assert report.all_sketches() == {
        "latency": Sketch({-60: 2048, -59: 1024}, 0, 1024),
        "time_to_first_token": Sketch({}, 0, 1024),
    }
    assert (report.requests, report.latency_mean, report.source) == (3, (1.75, 3), contents.source)


@pytest.mark.parametrize(
    "raw",
    [
        body(VALID),
        body(changed(("pod", "uid"), DELETE)),
        body(changed(("latency",), DELETE)),
        body({"pod": {"namespace": "ns", "name": "p"}, "seq": 1}),
    ],
)
def test_valid_bodies_take_the_fast_path(raw):
    assert push._decode_fast(raw, LIMITS, None) == push._decode_checked(raw, LIMITS)


@pytest.mark.parametrize(
    "raw",
    [
        body(changed(("latency", "bins"), {"-0": 1})),  # msgspec reads it as bin 0
        body(changed(("seq",), 17)).replace(b"17", b"17, " + b'"seq": "x"'),  # last one wins
        body(changed(("pod", "labels"), {"a": "\ud800"})),  # json takes lone surrogates
    ],
)
def test_what_the_fast_path_declines_the_checked_path_decides(raw):
    assert push._decode_fast(raw, LIMITS, None) is None
    assert_decodes_or_4xx(raw)


def test_client_encoding_decodes_to_the_same_numbers():
    identity = PodIdentity("inference", "model-0", "uid-1", {"app": "model"}, deployment="model")
    latencies = LatencySketch.from_values([0.0, 0.004, 0.012, 0.012, 0.25, 3.0, 99.0])
    document = encode_report(identity, 5, {QUEUE_DEPTH: 2, CONCURRENCY: 4}, latencies, 1.7e9)
    report = decode(body(document))
    assert report.pod == PodRef("inference", "model-0")
    assert (report.uid, report.seq, report.labels) == ("uid-1", 5, {"app": "model"})
    assert report.owner == Owner("Deployment", "model")
    assert report.pod_timestamp == 1.7e9
    assert report.gauges == {QUEUE_DEPTH: 2.0, CONCURRENCY: 4.0}
    assert LatencySketch.from_bins(report.latency_bins, report.latency_zero_count) == latencies
    assert report.completed_requests == 7


@pytest.mark.parametrize(
    ("path", "value", "attribute", "expected"),
    [
        (("pod", "uid"), DELETE, "uid", ""),
        (("pod", "uid"), "a", "uid", "a"),
        (("pod", "uid"), "A0-_.:z", "uid", "A0-_.:z"),
        (("pod", "uid"), "u" * push.MAX_UID_LENGTH, "uid", "u" * push.MAX_UID_LENGTH),
        (("pod", "labels"), DELETE, "labels", {}),
        (("pod", "labels"), {}, "labels", {}),
        (("pod", "labels"), {"a.b/c_d": "X-y.z_1"}, "labels", {"a.b/c_d": "X-y.z_1"}),
        (("pod", "owner"), DELETE, "owner", None),
        (("pod", "owner", "kind"), "StatefulSet", "owner", Owner("StatefulSet", "model")),
        (("pod", "owner", "name"), "a.b-c", "owner", Owner("Deployment", "a.b-c")),
        (("pod", "namespace"), "a" * 63, "pod", PodRef("a" * 63, "model-7d4b9c-x2k8p")),
        (("pod", "name"), "a." * 126 + "a", "pod", PodRef("inference", "a." * 126 + "a")),
        (("seq",), 1, "seq", 1),
        (("seq",), 2**63 - 1, "seq", 2**63 - 1),
        (("timestamp",), DELETE, "pod_timestamp", None),
        (("timestamp",), "2026-11-28T15:00:00Z", "pod_timestamp", VALID_TIMESTAMP - 0.123),
        (("timestamp",), "2026-11-28T17:00:00.123+02:00", "pod_timestamp", VALID_TIMESTAMP),
        (("timestamp",), "2026-11-28T15:00:00.123+00:00", "pod_timestamp", VALID_TIMESTAMP),
        # RFC 3339 section 5.6: "T" and "Z" may be lower case
        (("timestamp",), "2026-11-28t15:00:00.123z", "pod_timestamp", VALID_TIMESTAMP),
        (("timestamp",), "2026-11-28T15:00:00.123z", "pod_timestamp", VALID_TIMESTAMP),
        (("gauges",), DELETE, "gauges", {}),
        (("gauges",), {}, "gauges", {}),
        (("gauges",), {QUEUE_DEPTH: 0}, "gauges", {QUEUE_DEPTH: 0.0}),
        (("gauges",), {QUEUE_DEPTH: 1e15}, "gauges", {QUEUE_DEPTH: 1e15}),
        (("gauges",), {QUEUE_DEPTH: 10**15}, "gauges", {QUEUE_DEPTH: 1e15}),
        (("gauges",), {CONCURRENCY: 0.25}, "gauges", {CONCURRENCY: 0.25}),
        (("latency",), DELETE, "latency_bins", {}),
        (("latency", "bins"), DELETE, "latency_bins", {}),
        (("latency", "bins"), {}, "latency_bins", {}),
        (("latency", "zero_count"), DELETE, "latency_zero_count", 0),
        (("latency", "zero_count"), 10**12, "latency_zero_count", 10**12),
        (("latency", "bins"), {str(sketch.MIN_INDEX): 1}, "latency_bins", {sketch.MIN_INDEX: 1}),
        (("latency", "bins"), {str(sketch.MAX_INDEX): 1}, "latency_bins", {sketch.MAX_INDEX: 1}),
        (("latency", "bins"), {"0": 2**32 - 1}, "latency_bins", {0: 2**32 - 1}),
        (("latency", "relative_accuracy"), 0.01 + 1e-12, "latency_bins", {-230: 3, -229: 10}),
    ],
)
def test_valid_variants(path, value, attribute, expected):
    assert getattr(decode(body(changed(path, value))), attribute) == expected


def test_label_and_bin_limits_are_inclusive():
    labels = {f"l{i}": "v" for i in range(LIMITS.max_labels)}
    assert len(decode(body(changed(("pod", "labels"), labels))).labels) == 64
    small = PushConfig(max_bins=10)
    bins = {str(i): 1 for i in range(10)}
    assert len(decode(body(changed(("latency", "bins"), bins)), small).latency_bins) == 10
    bins["10"] = 1
    error = rejection(body(changed(("latency", "bins"), bins)), small)
    assert (error.code, error.field_path) == (422, "latency.bins")
    assert "11 bins" in error.message
    assert "limit of 10" in error.message


def test_gauge_limit_comes_from_the_config():
    tight = PushConfig(max_gauge_value=100.0)
    assert decode(body(changed(("gauges", QUEUE_DEPTH), 100)), tight).gauges[QUEUE_DEPTH] == 100
    error = rejection(body(changed(("gauges", QUEUE_DEPTH), 100.5)), tight)
    assert (error.code, error.field_path) == (422, "gauges.inference_queue_depth")


# --- malformed bodies: 400 ------------------------------------------------------------------

VALID_TEXT = json.dumps(VALID)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b" ",
        b"{",
        b"}",
        b"not json",
        b"{'pod': 1}",
        b'{"seq": 1,}',
        b'{"seq": 1} trailing',
        b'{"seq": 01}',
        b"\xff\xfe\x00",
        b'{"seq": "\xff"}',
        b"NaN",
        b"Infinity",
        b"-Infinity",
        VALID_TEXT.replace('"inference_queue_depth": 3', '"inference_queue_depth": NaN').encode(),
        VALID_TEXT.replace(
            '"inference_queue_depth": 3', '"inference_queue_depth": Infinity'
        ).encode(),
        VALID_TEXT.replace('"seq": 17', '"seq": -Infinity').encode(),
        VALID_TEXT.replace('"zero_count": 2', '"zero_count": NaN').encode(),
        b"[" * 100_000 + b"]" * 100_000,
        b'{"pod": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_001,
        b'{"seq": 1' + b"0" * 5000 + b"}",
    ],
    ids=lambda raw: repr(raw[:40]),
)
def test_malformed_json_is_400(raw):
    error = rejection(raw)
    assert (error.code, error.reason) == (400, "BadRequest")
    assert error.field_path is None
    assert error.message.startswith("the body is not valid UTF-8 JSON")
    assert len(error.message) < 200


# --- wrong fields: 422 naming the field -----------------------------------------------------

BAD_FIELDS = [
    # the body and the pod
    (("pod",), DELETE, "pod"),
    (("pod",), None, "pod"),
    (("pod",), [], "pod"),
    (("pod",), "inference/model", "pod"),
    (("extra",), 1, "extra"),
    (("Pod",), {}, "Pod"),
    (("pod", "extra"), "x", "pod.extra"),
    (("pod", "namespace"), DELETE, "pod.namespace"),
    (("pod", "namespace"), None, "pod.namespace"),
    (("pod", "namespace"), 5, "pod.namespace"),
    (("pod", "namespace"), "", "pod.namespace"),
    (("pod", "namespace"), "Inference", "pod.namespace"),
    (("pod", "namespace"), "a.b", "pod.namespace"),
    (("pod", "namespace"), "-a", "pod.namespace"),
    (("pod", "namespace"), "a" * 64, "pod.namespace"),
    (("pod", "namespace"), "ns\n", "pod.namespace"),
    (("pod", "name"), DELETE, "pod.name"),
    (("pod", "name"), ["model"], "pod.name"),
    (("pod", "name"), "", "pod.name"),
    (("pod", "name"), "Model", "pod.name"),
    (("pod", "name"), "a_b", "pod.name"),
    (("pod", "name"), "a" * 254, "pod.name"),
    (("pod", "name"), "../etc", "pod.name"),
    (("pod", "uid"), None, "pod.uid"),
    (("pod", "uid"), 5, "pod.uid"),
    (("pod", "uid"), "", "pod.uid"),
    (("pod", "uid"), "-a", "pod.uid"),
    (("pod", "uid"), "a b", "pod.uid"),
    (("pod", "uid"), "a/b", "pod.uid"),
    (("pod", "uid"), "u" * 129, "pod.uid"),
    (("pod", "uid"), "5f0c…", "pod.uid"),
    # labels
    (("pod", "labels"), [], "pod.labels"),
    (("pod", "labels"), "app=model", "pod.labels"),
    (("pod", "labels"), {"bad key": "v"}, "pod.labels['bad key']"),
    (("pod", "labels"), {"": "v"}, "pod.labels['']"),
    (("pod", "labels"), {"-app": "v"}, "pod.labels['-app']"),
    (("pod", "labels"), {"a/b/c": "v"}, "pod.labels['a/b/c']"),
    (("pod", "labels"), {"Example.com/app": "v"}, "pod.labels['Example.com/app']"),
    (("pod", "labels"), {"k" * 64: "v"}, f"pod.labels[{'k' * 64!r}]"),
    (("pod", "labels"), {"k" * 100: "v"}, f"pod.labels[{'k' * 80!r}]"),
    (("pod", "labels", "app"), 5, "pod.labels['app']"),
    (("pod", "labels", "app"), None, "pod.labels['app']"),
    (("pod", "labels", "app"), True, "pod.labels['app']"),
    (("pod", "labels", "app"), "bad value", "pod.labels['app']"),
    (("pod", "labels", "app"), "-model", "pod.labels['app']"),
    (("pod", "labels", "app"), "v" * 64, "pod.labels['app']"),
    (("pod", "labels"), {f"l{i}": "v" for i in range(65)}, "pod.labels"),
    # owner
    (("pod", "owner"), "model", "pod.owner"),
    (("pod", "owner"), None, "pod.owner"),
    (("pod", "owner"), {}, "pod.owner.kind"),
    (("pod", "owner"), {"kind": "Deployment"}, "pod.owner.name"),
    (("pod", "owner", "kind"), "deployment", "pod.owner.kind"),
    (("pod", "owner", "kind"), "", "pod.owner.kind"),
    (("pod", "owner", "kind"), "Deploy ment", "pod.owner.kind"),
    (("pod", "owner", "kind"), "D" * 64, "pod.owner.kind"),
    (("pod", "owner", "name"), "Model", "pod.owner.name"),
    (("pod", "owner", "name"), 1, "pod.owner.name"),
    (("pod", "owner", "apiVersion"), "apps/v1", "pod.owner.apiVersion"),
    # seq
    (("seq",), DELETE, "seq"),
    (("seq",), None, "seq"),
    (("seq",), "17", "seq"),
    (("seq",), 17.0, "seq"),
    (("seq",), 17.5, "seq"),
    (("seq",), True, "seq"),
    (("seq",), 0, "seq"),
    (("seq",), -1, "seq"),
    (("seq",), 2**63, "seq"),
    (("seq",), 10**30, "seq"),
    (("seq",), [17], "seq"),
    # timestamp
    (("timestamp",), None, "timestamp"),
    (("timestamp",), 1_700_000_000, "timestamp"),
    (("timestamp",), "", "timestamp"),
    (("timestamp",), "yesterday", "timestamp"),
    (("timestamp",), "2026-11-28T15:00:00", "timestamp"),
    (("timestamp",), "2026-11-28T15:00:00.123", "timestamp"),
    (("timestamp",), "2026-11-28", "timestamp"),
    (("timestamp",), "2026-11-28 15:00:00Z", "timestamp"),
    (("timestamp",), "2026-13-28T15:00:00Z", "timestamp"),
    (("timestamp",), "15:00:00Z", "timestamp"),
    # gauges
    (("gauges",), [], "gauges"),
    (("gauges",), 3, "gauges"),
    (("gauges", "inference_requests_per_second"), 1, "gauges.inference_requests_per_second"),
    (("gauges", "Inference_queue_depth"), 1, "gauges.Inference_queue_depth"),
    (("gauges", QUEUE_DEPTH), -1, "gauges.inference_queue_depth"),
    (("gauges", QUEUE_DEPTH), -1e-9, "gauges.inference_queue_depth"),
    (("gauges", QUEUE_DEPTH), 1e15 * (1 + 1e-15), "gauges.inference_queue_depth"),
    (("gauges", QUEUE_DEPTH), 10**15 + 1, "gauges.inference_queue_depth"),
    (("gauges", QUEUE_DEPTH), 1e16, "gauges.inference_queue_depth"),
    (("gauges", QUEUE_DEPTH), 1e308, "gauges.inference_queue_depth"),
    (("gauges", QUEUE_DEPTH), 10**400, "gauges.inference_queue_depth"),
    (("gauges", QUEUE_DEPTH), -(10**400), "gauges.inference_queue_depth"),
    (("gauges", QUEUE_DEPTH), True, "gauges.inference_queue_depth"),
    (("gauges", QUEUE_DEPTH), False, "gauges.inference_queue_depth"),
    (("gauges", QUEUE_DEPTH), "3", "gauges.inference_queue_depth"),
    (("gauges", QUEUE_DEPTH), None, "gauges.inference_queue_depth"),
    (("gauges", CONCURRENCY), [7], "gauges.inference_concurrency"),
    # latency
    (("latency",), [], "latency"),
    (("latency",), {}, "latency.relative_accuracy"),
    (("latency", "sum"), 1.5, "latency.sum"),
    (("latency", "relative_accuracy"), DELETE, "latency.relative_accuracy"),
    (("latency", "relative_accuracy"), None, "latency.relative_accuracy"),
    (("latency", "relative_accuracy"), 0.02, "latency.relative_accuracy"),
    (("latency", "relative_accuracy"), 0.005, "latency.relative_accuracy"),
    (("latency", "relative_accuracy"), 0.0101, "latency.relative_accuracy"),
    (("latency", "relative_accuracy"), "0.01", "latency.relative_accuracy"),
    (("latency", "relative_accuracy"), 0, "latency.relative_accuracy"),
    (("latency", "relative_accuracy"), 1, "latency.relative_accuracy"),
    (("latency", "relative_accuracy"), True, "latency.relative_accuracy"),
    (("latency", "relative_accuracy"), 10**400, "latency.relative_accuracy"),
    (("latency", "zero_count"), None, "latency.zero_count"),
    (("latency", "zero_count"), -1, "latency.zero_count"),
    (("latency", "zero_count"), 1.0, "latency.zero_count"),
    (("latency", "zero_count"), True, "latency.zero_count"),
    (("latency", "zero_count"), "2", "latency.zero_count"),
    (("latency", "zero_count"), 10**12 + 1, "latency.zero_count"),
    (("latency", "bins"), None, "latency.bins"),
    (("latency", "bins"), [[-230, 3]], "latency.bins"),
    (("latency", "bins"), {str(i): 1 for i in range(4097)}, "latency.bins"),
    (("latency", "bins", "+5"), 1, "latency.bins['+5']"),
    (("latency", "bins", "05"), 1, "latency.bins['05']"),
    (("latency", "bins", "-05"), 1, "latency.bins['-05']"),
    (("latency", "bins", "-0"), 1, "latency.bins['-0']"),
    (("latency", "bins", " 5"), 1, "latency.bins[' 5']"),
    (("latency", "bins", "5 "), 1, "latency.bins['5 ']"),
    (("latency", "bins", "1_0"), 1, "latency.bins['1_0']"),
    (("latency", "bins", "5.0"), 1, "latency.bins['5.0']"),
    (("latency", "bins", "1e2"), 1, "latency.bins['1e2']"),
    (("latency", "bins", "0x10"), 1, "latency.bins['0x10']"),
    (("latency", "bins", "\u0665"), 1, "latency.bins['\u0665']"),  # Arabic-Indic 5
    (("latency", "bins", ""), 1, "latency.bins['']"),
    (("latency", "bins", "bin"), 1, "latency.bins['bin']"),
    (("latency", "bins", "9" * 30), 1, f"latency.bins[{'9' * 20!r}]"),
    (("latency", "bins", "9" * 5000), 1, f"latency.bins[{'9' * 20!r}]"),
    (("latency", "bins", str(sketch.MIN_INDEX - 1)), 1, f"latency.bins['{sketch.MIN_INDEX - 1}']"),
    (("latency", "bins", str(sketch.MAX_INDEX + 1)), 1, f"latency.bins['{sketch.MAX_INDEX + 1}']"),
    (("latency", "bins", str(2**63)), 1, f"latency.bins['{2**63}']"),
    (("latency", "bins", "-230"), 0, "latency.bins['-230']"),
    (("latency", "bins", "-230"), -3, "latency.bins['-230']"),
    (("latency", "bins", "-230"), 3.0, "latency.bins['-230']"),
    (("latency", "bins", "-230"), True, "latency.bins['-230']"),
    (("latency", "bins", "-230"), "3", "latency.bins['-230']"),
    (("latency", "bins", "-230"), None, "latency.bins['-230']"),
    (("latency", "bins", "-230"), 2**32, "latency.bins['-230']"),
]


@pytest.mark.parametrize(
    ("path", "value", "field_path"),
    BAD_FIELDS,
    ids=[f"{'.'.join(p) or 'body'}={str(v)[:30]!r}" for p, v, _ in BAD_FIELDS],
)
def test_wrong_field_is_422_naming_it(path, value, field_path):
    document = value if path == () else changed(path, value)
    error = rejection(body(document))
    assert (error.code, error.reason) == (422, "Invalid")
    assert error.field_path == field_path
    assert field_path in error.message
    causes = error.status_body()["details"]["causes"]
    assert causes == [
        {"reason": "FieldValueInvalid", "message": error.message, "field": field_path}
    ]


@pytest.mark.parametrize("top", [[], [VALID], "x", 1, 1.5, True, None])
def test_body_that_is_not_an_object_is_400(top):
    error = rejection(body(top))
    assert (error.code, error.field_path) == (400, None)
    assert error.message == "the body must be a JSON object"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "latin-1"])
def test_only_utf8_bodies_are_json(encoding):
    text = VALID_TEXT.replace('"model"', '"modèl"', 1)
    error = rejection(text.encode(encoding))
    assert error.code == 400
    assert "UTF-8" in error.message


def test_a_huge_number_literal_is_refused_as_a_field():
    # 1e400 is valid JSON that Python reads as infinity: refused by the gauge check, not a crash
    raw = VALID_TEXT.replace('"inference_queue_depth": 3', '"inference_queue_depth": 1e400')
    error = rejection(raw.encode())
    assert (error.code, error.field_path) == (422, "gauges.inference_queue_depth")


def test_unknown_fields_are_named_in_sorted_order():
    document = changed(("zeta",), 1)
    document["alpha"] = 2
    assert rejection(body(document)).field_path == "alpha"


def test_long_offending_values_are_truncated_in_the_message():
    error = rejection(body(changed(("pod", "name"), "X" * 10_000)))
    assert error.field_path == "pod.name"
    assert len(error.message) < 1000


# --- content type ---------------------------------------------------------------------------


def test_json_content_type_is_accepted():
    assert push.check_content_type("application/json") is None


@pytest.mark.parametrize(
    "content_type",
    [
        "",
        "text/plain",
        "text/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "application/octet-stream",
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/jsonl",
        "application/yaml",
        "application/vnd.kubernetes.protobuf",
    ],
)
def test_other_content_types_are_415(content_type):
    with pytest.raises(ApiError) as caught:
        push.check_content_type(content_type)
    error = caught.value
    assert (error.code, error.reason) == (415, "UnsupportedMediaType")
    assert error.field_path == "Content-Type"
    assert repr(content_type) in error.message
    assert "application/json" in error.message


# --- properties -----------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from([0, -1, 2**63, 10**400, -(10**400), 1e308, 0.01, "", "-230", "+5"])
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=6,
)
shaped_documents = st.fixed_dictionaries(
    {},
    optional={
        "pod": st.fixed_dictionaries(
            {},
            optional={
                "namespace": json_values | st.just("ns"),
                "name": json_values | st.just("p"),
                "uid": json_values,
                "labels": json_values | st.dictionaries(st.text(max_size=8), json_values),
                "owner": json_values,
            },
        )
        | json_values,
        "seq": json_values | st.integers(),
        "timestamp": json_values | st.just("2026-11-28T15:00:00Z"),
        "gauges": st.dictionaries(st.sampled_from(GAUGE_NAMES), json_values) | json_values,
        "latency": st.fixed_dictionaries(
            {},
            optional={
                "relative_accuracy": json_values | st.just(0.01),
                "zero_count": json_values,
                "bins": st.dictionaries(st.text(max_size=6), json_values) | json_values,
            },
        )
        | json_values,
    },
)


def assert_decodes_or_4xx(raw: bytes) -> ApiError | None:
    """Decode ``raw``: a Report or an ApiError with a 4xx code, nothing else ever. And the fast
    (compiled) path accepts only what the checked path accepts, as the same Report."""
    fast = push._decode_fast(raw, LIMITS, push.KnownPods(10))
    if fast is not None:
        assert fast == push._decode_checked(raw, LIMITS)
    try:
        report = decode(raw)
    except ApiError as error:
        assert 400 <= error.code < 500
        assert error.message
        assert len(error.message) < 1000
        return error
    assert isinstance(report, Report)
    return None


@settings(max_examples=300, **PROPERTY)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(raw):
    assert_decodes_or_4xx(raw)


@settings(max_examples=250, **PROPERTY)
@given(json_values)
def test_arbitrary_json_never_crashes(value):
    error = assert_decodes_or_4xx(body(value))
    if not isinstance(value, dict):
        assert error is not None
        assert (error.code, error.field_path) == (400, None)


@settings(max_examples=250, **PROPERTY)
@given(shaped_documents)
def test_arbitrary_documents_with_known_fields_never_crash(document):
    error = assert_decodes_or_4xx(body(document))
    if error is not None:
        assert error.code == 422
        assert error.field_path is not None
        assert error.field_path in error.message


MAP_FIELDS = {("pod", "labels"): 80, **{(name, "bins"): 20 for name in SKETCH_NAMES}}
"""Containers whose keys appear in a field path as ``[key!r]``, truncated to this length."""


def field_path_of(path: tuple[str, ...]) -> str:
    """How ``decode_report`` names the field at ``path`` of a document."""
    if path[:-1] in MAP_FIELDS:
        return f"{'.'.join(path[:-1])}[{path[-1][: MAP_FIELDS[path[:-1]]]!r}]"
    return ".".join(path)


def fields_of(document: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every field path in ``document`` (objects only), outermost first."""
    found = []
    if isinstance(document, dict):
        for key, value in document.items():
            found.append((*prefix, key))
            found.extend(fields_of(value, (*prefix, key)))
    return found


def _get(document: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        document = document[key]
    return document


def names_the_field(field_path: str, mutated: str) -> bool:
    """Whether an error about ``field_path`` is about the mutated field or something inside it."""
    return (
        not mutated
        or field_path == mutated
        or field_path.startswith((f"{mutated}.", f"{mutated}["))
    )


@st.composite
def mutations(draw: st.DrawFn, base: dict[str, Any] = VALID) -> tuple[dict[str, Any], str]:
    """A hostile change to ``base``, and the field path an error about it must name."""
    valid_fields = fields_of(base)
    kind = draw(st.sampled_from(["replace", "delete", "extra"]))
    if kind == "extra":
        objects = [(), *(p for p in valid_fields if isinstance(_get(base, p), dict))]
        container = draw(st.sampled_from(objects))
        key = draw(st.text(max_size=10) | st.sampled_from(["uid", "seq", "+1", "-230", "app"]))
        path = (*container, key)
        value = draw(json_values | st.integers(1, 100) | st.text(max_size=5))
    else:
        path = draw(st.sampled_from(valid_fields))
        value = DELETE if kind == "delete" else draw(json_values)
    return changed(path, value, base), field_path_of(path)


@settings(max_examples=400, **PROPERTY)
@given(mutations())
def test_hostile_mutations_decode_or_name_the_field(mutation):
    document, mutated = mutation
    error = assert_decodes_or_4xx(body(document))
    if error is not None:
        assert error.code == 422
        assert error.field_path is not None
        assert names_the_field(error.field_path, mutated), (error.field_path, mutated)
        assert error.field_path in error.message


def syntax(edge: str, inner: str, max_inner: int) -> st.SearchStrategy[str]:
    """Names that start and end with a character of ``edge``, with ``inner`` ones between."""
    ends = st.sampled_from(edge)
    middle = st.text(alphabet=inner, max_size=max_inner)
    return ends | st.builds(lambda a, m, z: a + m + z, ends, middle, ends)


ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
dns_labels = syntax(ALNUM[:26] + ALNUM[-10:], ALNUM[:26] + ALNUM[-10:] + "-", 14)
label_names = syntax(ALNUM, ALNUM + "-_.", 10)
label_keys = label_names | st.builds(lambda p, n: f"{p}/{n}", dns_labels, label_names)
identities = st.builds(
    PodIdentity,
    namespace=dns_labels,
    name=st.builds(lambda a, b: f"{a}.{b}", dns_labels, dns_labels) | dns_labels,
    uid=st.just("") | st.builds(str.__add__, st.sampled_from(ALNUM), st.text(ALNUM + "-_.:")),
    labels=st.dictionaries(label_keys, st.just("") | label_names, max_size=8),
    deployment=st.none() | dns_labels,
)
gauge_values = st.floats(0, 1e15, allow_nan=False) | st.integers(0, 10**15)
latency_values = st.lists(
    st.floats(0, 1e3, allow_nan=False) | st.floats(1e-10, 1e-3) | st.just(0.0), max_size=60
)


@settings(max_examples=200, **PROPERTY)
@given(
    identities,
    st.integers(1, push.MAX_SEQ),
    st.dictionaries(st.sampled_from(GAUGE_NAMES), gauge_values).map(
        lambda gauges: {k: min(v, 1.0) if k in FRACTIONS else v for k, v in gauges.items()}
    ),
    latency_values,
    st.integers(0, 4_000_000_000_000),
)
def test_client_reports_round_trip(identity, seq, gauges, values, unix_ms):
    latencies = LatencySketch.from_values(np.asarray(values, dtype=np.float64))
    document = encode_report(identity, seq, gauges, latencies, unix_ms / 1000)
    raw = json.dumps(document).encode()
    report = decode(raw)
    assert push._decode_fast(raw, LIMITS, push.KnownPods(10)) == report, "not the fast path"
    assert push._decode_checked(raw, LIMITS) == report
    assert report.pod == PodRef(identity.namespace, identity.name)
    assert (report.uid, report.seq) == (identity.uid, seq)
    assert report.labels == identity.labels
    owner = Owner("Deployment", identity.deployment) if identity.deployment else None
    assert report.owner == owner
    assert report.gauges == gauges
    assert report.latency_bins == {int(k): v for k, v in latencies.to_bins().items()}
    assert report.latency_zero_count == latencies.zero_count
    assert report.completed_requests == len(values)
    assert report.pod_timestamp == pytest.approx(unix_ms / 1000, abs=1e-3)


# --- KnownPods: a pod's section is validated once, and only an identical one is remembered ------


def outcome(raw: bytes, known: push.KnownPods | None) -> Report | tuple[int, str | None]:
    try:
        return push.decode_report(raw, LIMITS, known)
    except ApiError as error:
        return error.code, error.field_path


def remembered(raw: bytes, known: push.KnownPods) -> Report:
    """Decode ``raw`` as the push handler does when the store applies it."""
    report = push.decode_report(raw, LIMITS, known)
    known.remember_last()
    return report


def test_a_repeated_pod_section_is_recognised():
    known = push.KnownPods(10)
    first = remembered(body(VALID), known)
    again = push.decode_report(body(changed(("seq",), 18)), LIMITS, known)
    assert again.labels is first.labels  # the remembered identity, not a second validation
    assert (again.pod, again.uid, again.owner, again.seq) == (first.pod, first.uid, first.owner, 18)
    assert len(known) == 1


@settings(max_examples=400, **PROPERTY)
@given(mutations())
def test_remembering_a_pod_never_changes_what_a_body_decodes_to(mutation):
    """The valid document is remembered first; any mutation of it (of the pod section too)
    decodes to exactly what it decodes to without memory: the same report or the same error."""
    document, _ = mutation
    known = push.KnownPods(10)
    remembered(body(VALID), known)
    assert outcome(body(document), known) == outcome(body(document), None)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("pod", "labels", "app"), "bad value!"),
        (("pod", "labels", "app"), 1),
        (("pod", "uid"), "has spaces"),
        (("pod", "owner", "kind"), "deployment"),
        (("pod", "extra"), "x"),
    ],
)
def test_a_changed_section_of_a_known_pod_is_checked_again(path, value):
    known = push.KnownPods(10)
    remembered(body(VALID), known)
    with pytest.raises(ApiError) as raised:
        push.decode_report(body(changed(path, value)), LIMITS, known)
    assert raised.value.code == 422


def test_known_pods_are_bounded():
    known = push.KnownPods(3)
    for i in range(5):
        remembered(body(changed(("pod", "name"), f"model-{i}")), known)
    assert len(known) == 3
    # the oldest were forgotten; a forgotten pod is simply validated again
    report = push.decode_report(body(changed(("pod", "name"), "model-0")), LIMITS, known)
    assert report.pod == PodRef("inference", "model-0")


def test_known_pods_retain_forgets_the_pods_not_kept():
    known = push.KnownPods(10)
    for i in range(4):
        remembered(body(changed(("pod", "name"), f"model-{i}")), known)
    assert known.retain(lambda namespace, name: name in ("model-1", "model-3")) == 2
    assert len(known) == 2


def test_a_section_is_remembered_only_once_its_report_was_applied():
    known = push.KnownPods(10)
    for i in range(3):  # refused after decoding: nothing stays
        push.decode_report(body(changed(("pod", "name"), f"refused-{i}")), LIMITS, known)
    first = push.decode_report(body(VALID), LIMITS, known)
    assert len(known) == 0
    known.remember_last()
    assert len(known) == 1
    known.remember_last()  # nothing waits any more
    assert len(known) == 1
    assert push.decode_report(body(VALID), LIMITS, known).labels is first.labels
