"""Decode and validate one ``POST /push/v1`` body into a ``Report``.

Strict by design: JSON only, known fields only, Kubernetes name and label syntax, finite
non-negative numbers, bounded sizes. Every rejection is an ``ApiError`` (400, 415 or 422) whose
message and ``field_path`` name the offending field, raised before anything reaches the store.
The contract is documented in docs/push-protocol.md.

Two paths, one answer:
- the *fast path* decodes and type-checks the whole body in one compiled pass (``msgspec``
  against the typed structs below: field names and types, unknown fields, integer ranges, bin
  keys as canonical integers in range), then checks in Python only what a type cannot say
  (names, labels, the timestamp, the limits of ``PushConfig``), the pod section once per pod
  (``KnownPods``). It never answers a rejection: on any doubt it declines;
- the *checked path* (``_decode_checked``) parses with ``json`` and checks field by field in
  the contract's order. It runs when the fast path declines, and its errors are the answers,
  so a rejection names the same field with the same words whichever path saw the body first.
The fast path accepts a body only if the checked path accepts it, with the same ``Report``
(tests/unit/test_push.py holds that over random, hostile and valid bodies).

Pure: bytes in, ``Report`` out. Must not import aiohttp.
"""

from __future__ import annotations

import datetime
import itertools
import json
import math
import re
import sys
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, NamedTuple

import msgspec

from adapter import errors, names, sketch
from adapter.config import PushConfig
from adapter.report import (
    FRACTIONS,
    GAUGE_NAMES,
    KV_CACHE_UTILIZATION,
    LATENCY,
    SIGNAL_NAMES,
    SKETCH_NAMES,
    Owner,
    PodRef,
    Report,
    Sketch,
    Source,
)

MAX_SEQ = 2**63 - 1
MAX_BIN_COUNT = 2**32 - 1
"""A bin's count in one push: the store keeps it in 32 bits."""
MAX_ZERO_COUNT = 10**12
MAX_UID_LENGTH = 128
_KIND = re.compile(r"[A-Z][A-Za-z0-9]{0,62}")
_UID = re.compile(r"[A-Za-z0-9][-A-Za-z0-9_.:]*")
MAX_COUNTS_PER_REQUEST = 1024
"""The most counts a request may make in a sketch (a power of two: the adapter rescales
exactly when it pools sketches that count differently)."""
MAX_SOURCE_TEXT = 300
"""The longest preset name or reason a ``source`` may carry (they end up in 404 messages)."""
MAX_BUCKET_BOUNDS = 128
_TOP_FIELDS = frozenset(
    {"pod", "seq", "timestamp", "gauges", *SKETCH_NAMES, "requests", "latency_mean", "source"}
)
_POD_FIELDS = frozenset({"namespace", "name", "uid", "labels", "owner"})
_OWNER_FIELDS = frozenset({"kind", "name"})
_SKETCH_FIELDS = frozenset({"relative_accuracy", "zero_count", "bins", "counts_per_request"})
_MEAN_FIELDS = frozenset({"sum", "count"})
_SOURCE_FIELDS = frozenset({"preset", "missing", "buckets"})
_PRESET = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def check_content_type(content_type: str) -> None:
    """Refuse anything but JSON (415)."""
    if content_type != "application/json":
        raise errors.unsupported_media_type(content_type)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid JSON number")


_JSON = json.JSONDecoder(parse_constant=_reject_constant)
"""One decoder for every push: ``json.loads`` with an option builds a new one per call."""


def _object(value: Any, path: str, allowed: frozenset[str] | None = None) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise errors.invalid_field(f"{path} must be a JSON object", path)
    if allowed is not None:
        unknown = value.keys() - allowed
        if unknown:
            name = min(unknown)[:80]  # the sender's text: bounded, as label keys are
            where = f"{path}.{name}" if path else name
            raise errors.invalid_field(f"unknown field {where}", where)
    return value


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise errors.invalid_field(f"{path} must be a string", path)
    return value


def _integer(value: Any, path: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise errors.invalid_field(f"{path} must be an integer", path)
    if not low <= value <= high:
        raise errors.invalid_field(f"{path} must be between {low} and {high}, not {value}", path)
    return value


def _syntax(problem: str | None, path: str, value: str) -> str:
    if problem is not None:
        raise errors.invalid_field(f"{path} {value[:80]!r}: {problem}", path)
    return value


def _labels(value: Any, limits: PushConfig) -> dict[str, str]:
    labels = _object(value, "pod.labels")
    if len(labels) > limits.max_labels:
        raise errors.invalid_field(
            f"pod.labels has {len(labels)} labels, more than the limit of {limits.max_labels}",
            "pod.labels",
        )
    for key, label_value in labels.items():
        path = f"pod.labels[{key[:80]!r}]"
        _syntax(names.label_key_error(key), path, key)
        _syntax(names.label_value_error(_string(label_value, path)), path, label_value)
    return dict(labels)


def _owner(value: Any) -> Owner:
    owner = _object(value, "pod.owner", _OWNER_FIELDS)
    kind = _string(owner.get("kind"), "pod.owner.kind")
    if not _KIND.fullmatch(kind):
        raise errors.invalid_field(
            f"pod.owner.kind {kind[:80]!r} is not a Kubernetes kind", "pod.owner.kind"
        )
    name = _string(owner.get("name"), "pod.owner.name")
    return Owner(kind, _syntax(names.dns1123_subdomain_error(name), "pod.owner.name", name))


def _uid(value: Any) -> str:
    uid = _string(value, "pod.uid")
    if len(uid) > MAX_UID_LENGTH or not _UID.fullmatch(uid):
        raise errors.invalid_field(
            f"pod.uid must be 1 to {MAX_UID_LENGTH} letters, digits, '-', '_', '.' or ':'",
            "pod.uid",
        )
    return uid


def _parse_timestamp(text: str) -> float | None:
    """Unix seconds of an RFC 3339 time with a zone, or None. RFC 3339 lets ``T`` and ``Z`` be
    lower case (section 5.6); ``fromisoformat`` takes a lower-case ``t`` but not ``z``."""
    try:
        parsed = datetime.datetime.fromisoformat(text[:-1] + "Z" if text[-1:] == "z" else text)
    except ValueError:
        return None
    if parsed.tzinfo is None or "T" not in text.upper():
        return None
    return parsed.timestamp()


def _timestamp(value: Any) -> float:
    text = _string(value, "timestamp")
    parsed = _parse_timestamp(text)
    if parsed is None:
        raise errors.invalid_field(
            f"timestamp {text[:80]!r} is not an RFC 3339 time with a zone", "timestamp"
        )
    return parsed


def _gauges(value: Any, limits: PushConfig) -> dict[str, float]:
    gauges = _object(value, "gauges", frozenset(GAUGE_NAMES))
    checked = {}
    for name, number in gauges.items():
        path = f"gauges.{name}"
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise errors.invalid_field(f"{path} must be a number", path)
        # the range check first: math.isfinite overflows on an int beyond float range
        if not 0 <= number <= limits.max_gauge_value or not math.isfinite(number):
            raise errors.invalid_field(
                f"{path} must be finite, at least 0 and at most {limits.max_gauge_value:g}", path
            )
        if name in FRACTIONS and number > 1:
            raise errors.invalid_field(f"{path} is a fraction: at most 1, not {number:g}", path)
        checked[name] = float(number)
    return checked


def _sketch(value: Any, name: str, limits: PushConfig) -> Sketch:
    sketch_fields = _object(value, name, _SKETCH_FIELDS)
    accuracy = sketch_fields.get("relative_accuracy")
    # only a float can be 0.01 (math.isclose overflows on an int beyond float range)
    if not isinstance(accuracy, float) or not math.isclose(
        accuracy, sketch.RELATIVE_ACCURACY, rel_tol=1e-9
    ):
        raise errors.invalid_field(
            f"{name}.relative_accuracy must be {sketch.RELATIVE_ACCURACY}",
            f"{name}.relative_accuracy",
        )
    zero_count = _integer(
        sketch_fields.get("zero_count", 0), f"{name}.zero_count", 0, MAX_ZERO_COUNT
    )
    raw_bins = _object(sketch_fields.get("bins", {}), f"{name}.bins")
    if len(raw_bins) > limits.max_bins:
        raise errors.invalid_field(
            f"{name}.bins has {len(raw_bins)} bins, more than the limit of {limits.max_bins}",
            f"{name}.bins",
        )
    bins = {_bin_index(name, key): _bin_count(name, key, count) for key, count in raw_bins.items()}
    path = f"{name}.counts_per_request"
    scale = _integer(sketch_fields.get("counts_per_request", 1), path, 1, MAX_COUNTS_PER_REQUEST)
    if not _power_of_two(scale):
        raise errors.invalid_field(f"{path} must be a power of two, not {scale}", path)
    return Sketch(bins, zero_count, scale)


def _power_of_two(number: int) -> bool:
    return number & (number - 1) == 0


_BIN_KEY = re.compile(r"0|-?[1-9][0-9]{0,5}")
"""A canonical decimal integer short enough to convert safely (the range check comes after)."""
_CANONICAL_INTEGER = re.compile(r"0|-?[1-9][0-9]*")


def _bin_index(name: str, key: str) -> int:
    path = f"{name}.bins[{key[:20]!r}]"
    if not _CANONICAL_INTEGER.fullmatch(key):
        raise errors.invalid_field(f"{path}: a bin key must be a decimal integer", path)
    if not _BIN_KEY.fullmatch(key):
        raise errors.invalid_field(
            f"{path} must be between {sketch.MIN_INDEX} and {sketch.MAX_INDEX}", path
        )
    return _integer(int(key), path, sketch.MIN_INDEX, sketch.MAX_INDEX)


def _bin_count(name: str, key: str, count: Any) -> int:
    return _integer(count, f"{name}.bins[{key[:20]!r}]", 1, MAX_BIN_COUNT)


def _latency_mean(value: Any, limits: PushConfig) -> tuple[float, int]:
    mean = _object(value, "latency_mean", _MEAN_FIELDS)
    for required in ("sum", "count"):
        if required not in mean:
            raise errors.invalid_field(
                f"latency_mean.{required} is required", f"latency_mean.{required}"
            )
    total = mean["sum"]
    if isinstance(total, bool) or not isinstance(total, int | float):
        raise errors.invalid_field("latency_mean.sum must be a number", "latency_mean.sum")
    if not 0 <= total <= limits.max_gauge_value or not math.isfinite(total):
        raise errors.invalid_field(
            f"latency_mean.sum must be finite, at least 0 and at most"
            f" {limits.max_gauge_value:g} (seconds)",
            "latency_mean.sum",
        )
    count = _integer(mean["count"], "latency_mean.count", 0, MAX_ZERO_COUNT)
    if total and not count:
        raise errors.invalid_field(
            "latency_mean.sum must be 0 when latency_mean.count is 0", "latency_mean.sum"
        )
    return float(total), count


def _valid_text(text: str) -> bool:
    return 0 < len(text) <= MAX_SOURCE_TEXT and text.isprintable()


def _valid_bounds(bounds: list[Any]) -> bool:
    # the range check before the order, on floats: an integer past float range would overflow
    # float(), and two integers that round to one float are not increasing once kept as floats
    return (
        len(bounds) <= MAX_BUCKET_BOUNDS
        and all(type(b) in (int, float) and 0 < b <= sys.float_info.max for b in bounds)
        and all(b < c for b, c in itertools.pairwise(map(float, bounds)))
    )


def _text(value: Any, path: str) -> str:
    text = _string(value, path)
    if not _valid_text(text):
        raise errors.invalid_field(
            f"{path} must be 1 to {MAX_SOURCE_TEXT} printable characters", path
        )
    return text


def _bounds(value: Any, path: str) -> tuple[float, ...]:
    if not isinstance(value, list) or not _valid_bounds(value):
        raise errors.invalid_field(
            f"{path} must be a list of at most {MAX_BUCKET_BOUNDS} increasing positive numbers",
            path,
        )
    return tuple(map(float, value))


def _source(value: Any) -> Source:
    source = _object(value, "source", _SOURCE_FIELDS)
    if "preset" not in source:
        raise errors.invalid_field("source.preset is required", "source.preset")
    preset = _string(source["preset"], "source.preset")
    if not _PRESET.fullmatch(preset):
        raise errors.invalid_field(
            f"source.preset {preset[:80]!r} must be 1 to 63 lower-case letters, digits or '-'",
            "source.preset",
        )
    missing = _object(source.get("missing", {}), "source.missing", _SIGNALS)
    buckets = _object(source.get("buckets", {}), "source.buckets", _SKETCHES)
    return Source(
        preset,
        {name: _text(why, f"source.missing.{name}") for name, why in missing.items()},
        {name: _bounds(b, f"source.buckets.{name}") for name, b in buckets.items()},
    )


_SIGNALS = frozenset(SIGNAL_NAMES)
_SKETCHES = frozenset(SKETCH_NAMES)


class _PodIdentity(NamedTuple):
    """A validated ``pod`` section."""

    pod: PodRef
    uid: str
    labels: Mapping[str, str]
    owner: Owner | None

    def report(
        self,
        seq: int,
        pod_timestamp: float | None,
        gauges: Mapping[str, float],
        sketches: Mapping[str, Sketch],
        requests: int | None = None,
        latency_mean: tuple[float, int] | None = None,
        source: Source | None = None,
    ) -> Report:
        """This pod's report with the other fields, already validated."""
        latency = sketches.get(LATENCY, _NO_LATENCY)
        return Report(
            self.pod,
            self.uid,
            seq,
            self.labels,
            self.owner,
            pod_timestamp,
            gauges,
            latency.bins,
            latency.zero_count,
            latency.counts_per_request,
            {name: s for name, s in sketches.items() if name != LATENCY},
            requests,
            latency_mean,
            source,
        )


_NO_LATENCY = Sketch({}, 0, 1)


def _pod_identity(value: Any, limits: PushConfig) -> _PodIdentity:
    pod = _object(value, "pod", _POD_FIELDS)
    namespace = _string(pod.get("namespace"), "pod.namespace")
    _syntax(names.dns1123_label_error(namespace), "pod.namespace", namespace)
    name = _string(pod.get("name"), "pod.name")
    _syntax(names.dns1123_subdomain_error(name), "pod.name", name)
    return _PodIdentity(
        PodRef(namespace, name),
        _uid(pod["uid"]) if "uid" in pod else "",
        _labels(pod["labels"], limits) if "labels" in pod else {},
        _owner(pod["owner"]) if "owner" in pod else None,
    )


# -- the fast path ---------------------------------------------------------------------------

_BinIndex = Annotated[int, msgspec.Meta(ge=sketch.MIN_INDEX, le=sketch.MAX_INDEX)]
_BinCount = Annotated[int, msgspec.Meta(ge=1, le=MAX_BIN_COUNT)]
_Gauge = Annotated[float, msgspec.Meta(ge=0)]
_GaugeName = Literal[
    "inference_queue_depth",
    "inference_concurrency",
    "inference_kv_cache_utilization",
    "inference_worker_slots",
    "inference_requests_shed_total",
]
"""``report.GAUGE_NAMES`` as a type (a test holds the two equal)."""
_SignalName = Literal[
    "inference_queue_depth",
    "inference_concurrency",
    "inference_kv_cache_utilization",
    "inference_worker_slots",
    "inference_requests_shed_total",
    "requests",
    "latency_mean",
    "latency",
    "time_to_first_token",
    "service_time",
]
"""``report.SIGNAL_NAMES`` as a type."""
_SketchName = Literal["latency", "time_to_first_token", "service_time"]
"""``report.SKETCH_NAMES`` as a type."""
_Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_ZERO_COUNT)]


class _WireOwner(msgspec.Struct, forbid_unknown_fields=True):
    kind: str
    name: str


class _WirePod(msgspec.Struct, forbid_unknown_fields=True):
    """A ``pod`` section as typed (its syntax is checked once per pod, ``KnownPods``)."""

    namespace: str
    name: str
    uid: str | msgspec.UnsetType = msgspec.UNSET
    labels: dict[str, str] = {}
    owner: _WireOwner | msgspec.UnsetType = msgspec.UNSET

    def as_section(self) -> dict[str, Any]:
        """The section as ``json`` reads it, for the checked path's validation."""
        section: dict[str, Any] = {"namespace": self.namespace, "name": self.name}
        if self.uid is not msgspec.UNSET:
            section["uid"] = self.uid
        section["labels"] = self.labels  # absent and {} mean the same
        if self.owner is not msgspec.UNSET:
            section["owner"] = {"kind": self.owner.kind, "name": self.owner.name}
        return section


class _WireSketch(msgspec.Struct, forbid_unknown_fields=True):
    relative_accuracy: float
    zero_count: _Count = 0
    bins: dict[_BinIndex, _BinCount] = {}
    counts_per_request: Annotated[int, msgspec.Meta(ge=1, le=MAX_COUNTS_PER_REQUEST)] = 1


class _WireMean(msgspec.Struct, forbid_unknown_fields=True):
    sum: Annotated[float, msgspec.Meta(ge=0)]
    count: _Count


class _WireSource(msgspec.Struct, forbid_unknown_fields=True):
    preset: str
    missing: dict[_SignalName, str] = {}
    buckets: dict[_SketchName, list[float]] = {}


class _WireReport(msgspec.Struct, forbid_unknown_fields=True):
    pod: _WirePod
    seq: Annotated[int, msgspec.Meta(ge=1, le=MAX_SEQ)]
    timestamp: str | msgspec.UnsetType = msgspec.UNSET
    gauges: dict[_GaugeName, _Gauge] = {}
    latency: _WireSketch | msgspec.UnsetType = msgspec.UNSET
    time_to_first_token: _WireSketch | msgspec.UnsetType = msgspec.UNSET
    service_time: _WireSketch | msgspec.UnsetType = msgspec.UNSET
    requests: _Count | msgspec.UnsetType = msgspec.UNSET
    latency_mean: _WireMean | msgspec.UnsetType = msgspec.UNSET
    source: _WireSource | msgspec.UnsetType = msgspec.UNSET


_DECODER = msgspec.json.Decoder(_WireReport)
_NEGATIVE_ZERO_KEY = b'"-0"'
"""msgspec reads the bin key ``"-0"`` as 0; the contract wants canonical keys, so a body with a
bin 0 that holds this string anywhere goes the checked way."""


class KnownPods:
    """The ``pod`` sections of reports applied lately, by namespace and name, each with its
    identity.

    A pod sends the same section in every push; one that equals the remembered one is valid
    without checking it again (a struct comparison instead of a dozen syntax checks). A section
    newly validated waits aside until its report is applied (``remember_last``), so a refused
    push (a pod pushing for another, a store without room) leaves nothing here: at most one
    section waits, replaced by the next. Bounded: past ``capacity`` the oldest entry is
    forgotten.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._sections: dict[tuple[str, str], tuple[_WirePod, _PodIdentity]] = {}
        self._last: tuple[tuple[str, str], _WirePod, _PodIdentity] | None = None

    def __len__(self) -> int:
        return len(self._sections)

    def retain(self, keep: Callable[[str, str], bool]) -> int:
        """Forget the pods (namespace, name) for which ``keep`` is false; returns how many.

        The adapter calls it when the store forgets silent pods, so pods gone with a rollout
        (or refused after decoding) do not stay here until the capacity evicts them.
        """
        before = len(self._sections)
        self._sections = {pod: known for pod, known in self._sections.items() if keep(*pod)}
        return before - len(self._sections)

    def identity(self, section: _WirePod, limits: PushConfig) -> _PodIdentity:
        """The identity of ``section``, remembered or validated now (``ApiError`` if invalid;
        a valid new one waits for ``remember_last``)."""
        self._last = None
        key = (section.namespace, section.name)
        known = self._sections.get(key)
        if known is not None and known[0] == section:
            return known[1]
        identity = _pod_identity(section.as_section(), limits)
        self._last = (key, section, identity)
        return identity

    def remember_last(self) -> None:
        """Remember the section ``identity`` validated last: its report was applied. Call it
        before decoding another report (the push handler does, without awaiting between)."""
        if self._last is None:
            return
        key, section, identity = self._last
        self._last = None
        if len(self._sections) >= self._capacity and key not in self._sections:
            del self._sections[next(iter(self._sections))]
        self._sections[key] = (section, identity)


def _decode_fast(body: bytes, limits: PushConfig, known: KnownPods | None) -> Report | None:
    """The report, if the compiled pass and the checks it leaves all pass; else None (then
    ``_decode_checked`` decides, and names the problem)."""
    try:
        wire = _DECODER.decode(body)
    except (msgspec.DecodeError, RecursionError):  # ValidationError is a DecodeError
        return None
    try:
        if known is None:
            identity = _pod_identity(wire.pod.as_section(), limits)
        else:
            identity = known.identity(wire.pod, limits)
    except errors.ApiError:
        return None
    sketches = {}
    for name in SKETCH_NAMES:
        wired = getattr(wire, name)
        if wired is msgspec.UNSET:
            continue
        if (
            len(wired.bins) > limits.max_bins
            or not math.isclose(wired.relative_accuracy, sketch.RELATIVE_ACCURACY, rel_tol=1e-9)
            or not _power_of_two(wired.counts_per_request)
            or (0 in wired.bins and _NEGATIVE_ZERO_KEY in body)
        ):
            return None
        sketches[name] = Sketch(wired.bins, wired.zero_count, wired.counts_per_request)
    gauges = wire.gauges
    if gauges and (
        max(gauges.values()) > limits.max_gauge_value or gauges.get(KV_CACHE_UTILIZATION, 0) > 1
    ):
        return None
    pod_timestamp = None
    if wire.timestamp is not msgspec.UNSET:
        pod_timestamp = _parse_timestamp(wire.timestamp)
        if pod_timestamp is None:
            return None
    latency_mean = None
    if wire.latency_mean is not msgspec.UNSET:
        mean = wire.latency_mean
        if mean.sum > limits.max_gauge_value or (mean.sum and not mean.count):
            return None
        latency_mean = (mean.sum, mean.count)
    source = None
    if wire.source is not msgspec.UNSET:
        source = _fast_source(wire.source)
        if source is None:
            return None
    requests = None if wire.requests is msgspec.UNSET else wire.requests
    return identity.report(
        wire.seq, pod_timestamp, gauges, sketches, requests, latency_mean, source
    )


def _fast_source(wired: _WireSource) -> Source | None:
    """The source, if every check a type cannot make passes; else None."""
    if not _PRESET.fullmatch(wired.preset):
        return None
    if not all(map(_valid_text, wired.missing.values())):
        return None
    if not all(map(_valid_bounds, wired.buckets.values())):
        return None
    return Source(
        wired.preset,
        dict(wired.missing),
        {name: tuple(bounds) for name, bounds in wired.buckets.items()},
    )


class _NamedPod(msgspec.Struct):
    namespace: str
    name: str


class _NamingBody(msgspec.Struct):
    pod: _NamedPod


_NAMING_DECODER = msgspec.json.Decoder(_NamingBody)


def pod_named_in(body: bytes) -> PodRef | None:
    """The pod a body says it is about, if it names one validly, however wrong the rest: so a
    refused report can be logged under its pod (``adapter.rejections``). Not a validation."""
    try:
        named = _NAMING_DECODER.decode(body).pod
    except (msgspec.DecodeError, RecursionError):
        return None
    if names.dns1123_label_error(named.namespace) or names.dns1123_subdomain_error(named.name):
        return None
    return PodRef(named.namespace, named.name)


# -- the checked path and the entry point -------------------------------------------------------


def _decode_checked(body: bytes, limits: PushConfig) -> Report:
    """Parse with ``json`` and check every field in the contract's order; the first bad one
    raises ``ApiError`` naming it. The reference for ``_decode_fast``."""
    try:
        document = _JSON.decode(body.decode("utf-8"))
    except (ValueError, RecursionError) as error:
        raise errors.bad_request(f"the body is not valid UTF-8 JSON: {str(error)[:120]}") from error
    if not isinstance(document, dict):
        raise errors.bad_request("the body must be a JSON object")
    top = _object(document, "", _TOP_FIELDS)
    if "pod" not in top:
        raise errors.invalid_field("pod is required", "pod")
    identity = _pod_identity(top["pod"], limits)
    if "seq" not in top:
        raise errors.invalid_field("seq is required", "seq")
    seq = _integer(top["seq"], "seq", 1, MAX_SEQ)
    pod_timestamp = _timestamp(top["timestamp"]) if "timestamp" in top else None
    gauges = _gauges(top["gauges"], limits) if "gauges" in top else {}
    sketches = {name: _sketch(top[name], name, limits) for name in SKETCH_NAMES if name in top}
    requests = None
    if "requests" in top:
        requests = _integer(top["requests"], "requests", 0, MAX_ZERO_COUNT)
    latency_mean = _latency_mean(top["latency_mean"], limits) if "latency_mean" in top else None
    source = _source(top["source"]) if "source" in top else None
    return identity.report(seq, pod_timestamp, gauges, sketches, requests, latency_mean, source)


def decode_report(body: bytes, limits: PushConfig, known: KnownPods | None = None) -> Report:
    """Parse and validate one push body. Raises ``ApiError`` naming the first bad field.

    With ``known``, a pod section seen before is recognised instead of checked again (and a new
    one is remembered once the caller applied the report: ``KnownPods.remember_last``)."""
    report = _decode_fast(body, limits, known)
    return report if report is not None else _decode_checked(body, limits)
