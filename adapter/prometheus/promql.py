"""PromQL generation: the catalog's queries, from a metric's source (data) and the pods' scope.

Every query the Prometheus provider sends is built here, from an ``adapter.prometheus.sources``
entry and a scope of label matchers; nothing here names a metric. The shapes:

- gauge: ``sum by (G) (avg_over_time(<gauge>{M}[gauge window]))``, one query per series the
  gauge adds up (``avg by`` for a fraction averaged over a pod's engines, grouped per pod);
- rate: ``sum by (G) (rate(<counter>{M}[W]))``, one query per counter the rate adds up (a
  failure counter that does not exist yet is then 0, not the end of the sum);
- quantiles, per pod: ``histogram_quantile(q, sum by (G, le) (rate(<hist>_bucket{M}[W])))``;
- quantiles, pooled over pods: ``sum by (G, le) (rate(<hist>_bucket{M}[W]))``, whose buckets
  the adapter sums over the parts of a split selection and reads with ``adapter.prometheus.
  histogram.bucket_quantile`` (``histogram_quantile``'s own arithmetic);
- a mean: the rates of its time counter and of its request counters, divided by the adapter;
- newest sample: ``max by (G) (timestamp(<freshness series>{M}))``.

An aggregate keeps only pods whose newest sample is within the max age, in the query itself:
``... and on (namespace, pod) (time() - timestamp(<freshness series>{M}) <= max age)``.

Pure: strings in, strings out. Raises ``Untranslatable`` for a label selector that label
matchers cannot express.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from adapter import selectors
from adapter.prometheus.sources import Gauge, Histogram, Series, SeriesLabels, Source

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_NOT_LABEL_CHAR = re.compile(r"[^a-zA-Z0-9_]")
_REGEX_SPECIAL = re.compile(r"([\\.+*?()|\[\]{}^$])")
_ESCAPED = re.compile(r"[^ !#-\[\]-~]")
"""What a PromQL literal cannot hold as itself: all but printable ASCII, ``"`` and ``\\``."""


class Untranslatable(ValueError):
    """A label selector that Prometheus label matchers cannot express (``>``, ``<``, a key
    whose label name would start with a digit)."""


def is_label_name(text: str) -> bool:
    """Whether ``text`` is a valid Prometheus label name."""
    return _LABEL_NAME.fullmatch(text) is not None


def label_name(key: str) -> str:
    """The Prometheus label a Kubernetes label key becomes through ``labelmap`` relabeling:
    every character outside ``[a-zA-Z0-9_]`` turns into ``_``, as Prometheus' service
    discovery writes ``__meta_kubernetes_pod_label_<key>``.

    >>> label_name("app.kubernetes.io/name")
    'app_kubernetes_io_name'
    """
    return _NOT_LABEL_CHAR.sub("_", key)


def quote(text: str) -> str:
    """A PromQL string literal that means exactly ``text``: ``\\``, ``"`` and newlines escaped,
    every other character outside printable ASCII written as a ``\\u``/``\\U`` escape
    (Prometheus' lexer refuses a raw newline and takes a raw U+FFFD for invalid UTF-8).

    >>> print(quote('say "hi"'), quote("two\\nlines"), quote("\\ufffd"))
    "say \\"hi\\"" "two\\nlines" "\\ufffd"
    """
    return f'"{_ESCAPED.sub(_escape, text)}"'


def _escape(found: re.Match[str]) -> str:
    character = found.group()
    if character in '"\\':
        return "\\" + character
    if character == "\n":
        return "\\n"
    code = ord(character)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def quote_regex(text: str) -> str:
    """``text`` as an RE2 pattern matching exactly itself (Go's ``regexp.QuoteMeta``).

    >>> quote_regex("a.b")
    'a\\\\.b'
    """
    return _REGEX_SPECIAL.sub(r"\\\1", text)


@dataclass(frozen=True)
class Matcher:
    """One PromQL label matcher: ``pod=~"a|b"``."""

    label: str
    op: str
    """``=``, ``!=``, ``=~`` or ``!~``."""
    value: str

    def __str__(self) -> str:
        return f"{self.label}{self.op}{quote(self.value)}"


Scope = tuple[Matcher, ...]
"""The matchers that pick the pods' series (ANDed)."""


def equals(label: str, value: str) -> Matcher:
    return Matcher(label, "=", value)


def one_of(label: str, values: Iterable[str]) -> Matcher:
    """A matcher for any of ``values`` (one ``=`` for a single value)."""
    unique = sorted(set(values))
    if len(unique) == 1:
        return equals(label, unique[0])
    return Matcher(label, "=~", "|".join(map(quote_regex, unique)))


def selector_matchers(selector: selectors.Selector) -> Scope:
    """A Kubernetes label selector as matchers on the series' (``labelmap``-ed) labels.

    A missing label reads as ``""`` in PromQL, so ``!=``, ``notin`` and ``!key`` keep their
    Kubernetes meaning for series without the label.

    >>> [str(m) for m in selector_matchers(selectors.parse("app=model,tier in (a,b),!canary"))]
    ['app="model"', 'canary=""', 'tier=~"a|b"']
    """
    matchers = []
    for requirement in selector.requirements:
        name, values = label_name(requirement.key), requirement.values
        if not is_label_name(name):
            raise Untranslatable(
                f"the label key {requirement.key} has no Prometheus label name (relabeling"
                f" makes it {name}, which PromQL cannot name)"
            )
        operator = requirement.operator
        if operator in (selectors.EQUALS, selectors.DOUBLE_EQUALS, selectors.IN):
            matchers.append(one_of(name, values))
        elif operator in (selectors.NOT_EQUALS, selectors.NOT_IN):
            positive = one_of(name, values)
            matchers.append(Matcher(name, "!=" if positive.op == "=" else "!~", positive.value))
        elif operator == selectors.EXISTS:
            matchers.append(Matcher(name, "=~", ".+"))
        elif operator == selectors.DOES_NOT_EXIST:
            matchers.append(equals(name, ""))
        else:
            raise Untranslatable(
                f"the requirement {requirement} cannot be expressed as Prometheus label"
                " matchers; use =, !=, in, notin or exists"
            )
    return tuple(matchers)


def duration(seconds: float) -> str:
    """A PromQL duration: ``15s``, or ``1500ms`` for fractions.

    >>> duration(15.0), duration(1.5)
    ('15s', '1500ms')
    """
    if float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{round(seconds * 1000)}ms"


def vector(series: Series, scope: Scope) -> str:
    """An instant vector selector: ``name{fixed labels, scope}``."""
    matchers = [*(equals(k, v) for k, v in sorted(series.labels.items())), *scope]
    return series.name + "{" + ",".join(map(str, matchers)) + "}"


def _by(labels: Sequence[str]) -> str:
    return f" by ({', '.join(labels)})" if labels else ""


@dataclass(frozen=True)
class Queries:
    """The queries for one selection of pods, with the windows and labels they use."""

    labels: SeriesLabels
    window_seconds: float
    """Rates and latency quantiles cover this (``--window``)."""
    gauge_window_seconds: float
    """Gauges are averaged over this (``--prometheus-gauge-window``)."""
    max_age_seconds: float

    @property
    def per_pod(self) -> tuple[str, str]:
        """The grouping of one value per pod."""
        return (self.labels.namespace, self.labels.pod)

    def _fresh(self, freshness: Series, scope: Scope) -> str:
        pod = ", ".join(self.per_pod)
        return (
            f" and on ({pod}) (time() - timestamp({vector(freshness, scope)})"
            f" <= {self.max_age_seconds:g})"
        )

    def gauge(self, source: Gauge, scope: Scope, by: Sequence[str], fresh_only: bool) -> list[str]:
        """One query per series of the gauge: each pod's average over the gauge window, summed
        per group ``by`` (averaged, for a fraction: then ``by`` must name the pod); with
        ``fresh_only`` only pods sampled within the max age count."""
        fresh = self._fresh(source.freshness, scope) if fresh_only else ""
        window = duration(self.gauge_window_seconds)
        combine = "avg" if source.within_pod == "mean" else "sum"
        return [
            f"{combine}{_by(by)} (avg_over_time({vector(series, scope)}[{window}]){fresh})"
            for series in source.series
        ]

    def rates(
        self,
        counters: Sequence[Series],
        freshness: Series,
        scope: Scope,
        by: Sequence[str],
        fresh_only: bool,
    ) -> list[str]:
        """One query per counter: its rate over the window, summed per group ``by``."""
        fresh = self._fresh(freshness, scope) if fresh_only else ""
        window = duration(self.window_seconds)
        return [
            f"sum{_by(by)} (rate({vector(series, scope)}[{window}]){fresh})" for series in counters
        ]

    def buckets(self, source: Histogram, scope: Scope, by: Sequence[str], fresh_only: bool) -> str:
        """The histogram's bucket rates summed per group ``by`` and ``le`` (pooled)."""
        fresh = self._fresh(source.freshness, scope) if fresh_only else ""
        window = duration(self.window_seconds)
        return f"sum{_by((*by, 'le'))} (rate({vector(source.buckets, scope)}[{window}]){fresh})"

    def quantile(self, source: Histogram, quantile: float, scope: Scope, by: Sequence[str]) -> str:
        """The ``quantile`` of each group's pooled observations, computed by Prometheus (in the
        histogram's unit)."""
        return f"histogram_quantile({quantile:g}, {self.buckets(source, scope, by, True)})"

    def newest_sample(self, source: Source, scope: Scope, by: Sequence[str]) -> str:
        """Each group's newest sample time (Unix seconds)."""
        return f"max{_by(by)} (timestamp({vector(source.freshness, scope)}))"
