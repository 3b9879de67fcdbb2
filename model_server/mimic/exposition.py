"""A snapshot written as text exactly the way each server's metrics library writes it.

``render(snapshot)`` picks the writer of ``snapshot.surface.library``:

- ``prometheus_client`` (vLLM): the client's own ``generate_latest``; counters get ``_total`` and a
  ``_created`` gauge, histograms a ``_created`` gauge too.
- ``prometheus_client_multiprocess`` (SGLang): as ``MultiProcessCollector`` merges it: no
  ``_created``, a histogram's ``_sum`` before its buckets and ``_count`` after, no family
  without a value.
- ``metrics_rs`` (TGI): HELP only for described names, no ``_total``, counters then gauges then
  histograms, a blank line after each family, numbers as Rust prints an ``f64``.
- ``prometheus_cpp`` (Triton): labels sorted, ``_count`` and ``_sum`` before the buckets,
  numbers as C++ streams them at 16 significant digits, no family without series.
- ``java_simpleclient`` (TorchServe, simpleclient 0.9): names as declared, a comma after the last
  label, numbers as Java's ``Double.toString``, HELP and TYPE even for a family without series.
- ``tensorflow_serving``: TYPE lines only, ``/`` turned into ``:``, integers for counters, ``le``
  and ``_sum`` at 6 significant digits, ``{}`` even without labels.

Pure: strings in, a string out (prometheus_client is used only as a writer).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Final

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

from model_server.mimic.recorder import FamilySnapshot, Series, Snapshot

__all__ = [
    "CONTENT_TYPE",
    "absl_six_digits",
    "cpp_double",
    "java_double",
    "render",
    "rust_f64",
]

TEXT_004: Final = "text/plain; version=0.0.4; charset=utf-8"
CONTENT_TYPE: Final = {
    "prometheus_client": CONTENT_TYPE_LATEST,
    "prometheus_client_multiprocess": CONTENT_TYPE_LATEST,
    "metrics_rs": TEXT_004,
    "prometheus_cpp": TEXT_004,
    "java_simpleclient": TEXT_004,
    "tensorflow_serving": TEXT_004,
}
"""The Content-Type each server answers ``/metrics`` with (0.0.4 text for the non-Python ones)."""


def render(snapshot: Snapshot) -> str:
    """``snapshot`` in the text its server writes."""
    writer = _WRITERS[snapshot.surface.library]
    return writer(snapshot)


# --- number formats ---------------------------------------------------------------------------


def rust_f64(value: float) -> str:
    """Rust's ``Display`` for ``f64``: shortest round-trip digits, never an exponent, no ``.0``.

    >>> rust_f64(3.0), rust_f64(0.00015000000000000001), rust_f64(1e21)
    ('3', '0.00015000000000000001', '1000000000000000000000')
    """
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if math.isnan(value):
        return "NaN"
    text = format(Decimal(repr(value)).normalize(), "f")
    return "0" if text in ("-0", "0") else text


def cpp_double(value: float) -> str:
    """A double streamed by C++ at precision 16 (prometheus-cpp 1.x): ``%.16g``.

    >>> cpp_double(100.0), cpp_double(2.5), cpp_double(1234567.0)
    ('100', '2.5', '1234567')
    """
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "Nan"
    return format(value, ".16g")


def java_double(value: float) -> str:
    """Java's ``Double.toString``: plain in [1e-3, 1e7) with at least one decimal, else
    ``d.dddE<n>``.

    >>> java_double(3.0), java_double(290371.129), java_double(12345678.0), java_double(0.0001)
    ('3.0', '290371.129', '1.2345678E7', '1.0E-4')
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0.0"
    if 1e-3 <= abs(value) < 1e7:
        return repr(float(value))
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    power = exponent + len(text) - 1
    mantissa = f"{text[0]}.{text[1:] or '0'}"
    return f"{'-' if sign else ''}{mantissa}E{power}"


def absl_six_digits(value: float) -> str:
    """``absl::StrCat`` of a double: 6 significant digits, as ``%g``.

    >>> absl_six_digits(357.0467266), absl_six_digits(1234567.0), absl_six_digits(10.0)
    ('357.047', '1.23457e+06', '10')
    """
    return format(value, ".6g")


# --- helpers ----------------------------------------------------------------------------------


def _label_text(pairs: Iterable[tuple[str, str]], trailing_comma: bool = False) -> str:
    parts = [f'{name}="{_escape(value)}"' for name, value in pairs]
    if not parts:
        return ""
    return "{" + ",".join(parts) + ("," if trailing_comma else "") + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _buckets(family: FamilySnapshot, series: Series) -> list[tuple[float, int]]:
    """(upper bound, cumulative count) pairs, +Inf last."""
    return list(zip((*family.bounds, math.inf), series.buckets, strict=True))


# --- prometheus_client ------------------------------------------------------------------------


class _Families:
    """A collector over ready-made prometheus_client Metric objects (for generate_latest)."""

    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> list[Metric]:
        return self._metrics


def _python(snapshot: Snapshot, *, multiprocess: bool) -> str:
    metrics = []
    for family in snapshot.families:
        if multiprocess and not family.series:
            continue  # the merge builds families from the values written: none, no family
        spec = family.family
        name = spec.name.removesuffix("_total") if spec.kind == "counter" else spec.name
        metric = Metric(name, spec.help or "", spec.kind)
        for series in family.series:
            labels = dict(series.labels)
            _python_samples(metric, name, family, series, labels, multiprocess)
        metrics.append(metric)
    return generate_latest(_Families(metrics)).decode()  # type: ignore[arg-type]


def _python_samples(
    metric: Metric,
    name: str,
    family: FamilySnapshot,
    series: Series,
    labels: dict[str, str],
    multiprocess: bool,
) -> None:
    kind = family.family.kind
    if kind == "counter":
        metric.add_sample(name + "_total", labels, series.value)
    elif kind == "gauge":
        metric.add_sample(name, labels, series.value)
    elif kind == "summary":
        metric.add_sample(name + "_count", labels, series.count)
        metric.add_sample(name + "_sum", labels, series.total)
    else:
        if multiprocess:
            metric.add_sample(name + "_sum", labels, series.total)
        for bound, count in _buckets(family, series):
            metric.add_sample(name + "_bucket", {**labels, "le": floatToGoString(bound)}, count)
        metric.add_sample(name + "_count", labels, series.count)
        if not multiprocess:
            metric.add_sample(name + "_sum", labels, series.total)
    if kind != "gauge" and not multiprocess:
        metric.add_sample(name + "_created", labels, series.created)


# --- metrics-rs (TGI) -------------------------------------------------------------------------


def _metrics_rs(snapshot: Snapshot) -> str:
    lines: list[str] = []
    groups = (("counter",), ("gauge",), ("histogram", "summary"))
    for kinds in groups:
        chosen = [f for f in snapshot.families if f.family.kind in kinds and f.series]
        for family in sorted(chosen, key=lambda f: f.family.name):
            spec = family.family
            if spec.help is not None:
                lines.append(f"# HELP {spec.name} {spec.help}")
            lines.append(f"# TYPE {spec.name} {spec.kind}")
            for series in family.series:
                lines.extend(_metrics_rs_series(family, series))
            lines.append("")
    return "".join(line + "\n" for line in lines)


def _metrics_rs_series(family: FamilySnapshot, series: Series) -> list[str]:
    name, labels = family.family.name, series.labels
    if family.family.kind == "counter":
        return [f"{name}{_label_text(labels)} {int(series.value)}"]
    if family.family.kind == "gauge":
        return [f"{name}{_label_text(labels)} {rust_f64(series.value)}"]
    lines = []
    for bound, count in _buckets(family, series):
        le = "+Inf" if math.isinf(bound) else rust_f64(bound)
        lines.append(f"{name}_bucket{_label_text((*labels, ('le', le)))} {count}")
    lines.append(f"{name}_sum{_label_text(labels)} {rust_f64(series.total)}")
    lines.append(f"{name}_count{_label_text(labels)} {series.count}")
    return lines


# --- prometheus-cpp (Triton) ------------------------------------------------------------------


def _prometheus_cpp(snapshot: Snapshot) -> str:
    lines: list[str] = []
    for family in snapshot.families:
        if not family.series:
            continue
        spec = family.family
        if spec.help:
            lines.append(f"# HELP {spec.name} {spec.help}")
        lines.append(f"# TYPE {spec.name} {spec.kind}")
        for series in sorted(family.series, key=lambda s: sorted(s.labels)):
            labels = tuple(sorted(series.labels))
            if spec.kind in ("counter", "gauge"):
                lines.append(f"{spec.name}{_label_text(labels)} {cpp_double(series.value)}")
                continue
            lines.append(f"{spec.name}_count{_label_text(labels)} {series.count}")
            lines.append(f"{spec.name}_sum{_label_text(labels)} {cpp_double(series.total)}")
            for bound, count in _buckets(family, series):
                le = _label_text((*labels, ("le", cpp_double(bound))))
                lines.append(f"{spec.name}_bucket{le} {count}")
    return "".join(line + "\n" for line in lines)


# --- Java simpleclient 0.9 (TorchServe) -------------------------------------------------------


def _java_simpleclient(snapshot: Snapshot) -> str:
    lines: list[str] = []
    for family in snapshot.families:
        spec = family.family
        lines.append(f"# HELP {spec.name} {spec.help or ''}")
        lines.append(f"# TYPE {spec.name} {spec.kind}")
        for series in family.series:
            labels = _label_text(series.labels, trailing_comma=True)
            lines.append(f"{spec.name}{labels} {java_double(series.value)}")
    return "".join(line + "\n" for line in lines)


# --- TensorFlow Serving -----------------------------------------------------------------------


def _tensorflow_serving(snapshot: Snapshot) -> str:
    lines: list[str] = []
    for family in sorted(snapshot.families, key=lambda f: f.family.name):
        spec = family.family
        name = spec.name.replace("/", ":")
        lines.append(f"# TYPE {name} {spec.kind}")
        for series in family.series:
            labels = [f'{k}="{_escape(v)}"' for k, v in series.labels]
            inner = ",".join(labels)
            if spec.kind != "histogram":
                lines.append(f"{name}{{{inner}}} {int(series.value)}")
                continue
            prefix = f"{name}_bucket{{{inner}{',' if labels else ''}"
            for bound, count in _buckets(family, series):
                le = "+Inf" if math.isinf(bound) else absl_six_digits(bound)
                lines.append(f'{prefix}le="{le}"}} {count}')
            lines.append(f"{name}_sum{{{inner}}} {absl_six_digits(series.total)}")
            lines.append(f"{name}_count{{{inner}}} {series.count}")
    return "".join(line + "\n" for line in lines)


_WRITERS: Final[dict[str, Callable[[Snapshot], str]]] = {
    "prometheus_client": lambda s: _python(s, multiprocess=False),
    "prometheus_client_multiprocess": lambda s: _python(s, multiprocess=True),
    "metrics_rs": _metrics_rs,
    "prometheus_cpp": _prometheus_cpp,
    "java_simpleclient": _java_simpleclient,
    "tensorflow_serving": _tensorflow_serving,
}
