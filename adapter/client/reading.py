"""A server's ``/metrics``, scrape after scrape, read through a preset into report contents.

``parse`` reads exposition text with prometheus-client's own parser and indexes the samples by
the names the server exposed. The parser renames counters (a family loses ``_total``, its
samples gain it whether the server wrote it or not: TGI's ``tgi_request_success 5`` parses as
sample ``tgi_request_success_total``), so a counter's samples are found under both names.

``Reader`` keeps what the previous scrapes said and turns each new one into the contents of one
report (``adapter.client.pusher.Contents``): gauges as they are now (summed over a pod's
engines, or averaged for a fraction), and what happened since the previous scrape: the
completed requests (counter deltas), the latencies and times to first token (histogram bucket
deltas spread into sketch bins by ``adapter.client.buckets``), the mean latency's sum and count.

- Counter resets: a counter that went down, or whose ``_created`` changed (prometheus_client
  writes one), restarted with the server; what it counts since then is what is new (as
  Prometheus' ``rate`` reads it), and the reading says so (``restarted``).
- A series that was not there before (one that appears on first use, as TGI's and SGLang's do)
  is new with everything it counts; on the first scrape everything is a baseline.
- A family missing from a scrape is left out of the report (``missing`` says so), never sent
  as 0; its last values are kept, so when it comes back nothing is counted twice.

Pure: text in, contents out; no I/O, no clock.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from prometheus_client.parser import text_string_to_metric_families

from adapter import sketch
from adapter.catalog import Signal
from adapter.client import buckets
from adapter.client.pusher import Contents
from adapter.prometheus.sources import Counter, Gauge, Histogram, Mean, Preset, Series
from adapter.prometheus.sources import Source as Input
from adapter.push import MAX_BIN_COUNT, MAX_ZERO_COUNT
from adapter.report import Source

Labels = frozenset[tuple[str, str]]
MAX_GAUGE_VALUE = 1e15


class ExpositionError(ValueError):
    """The text is not Prometheus exposition."""


@dataclass(frozen=True)
class Scrape:
    """One scrape's samples by exposed name: ``{name: [(labels, value), ...]}``."""

    samples: Mapping[str, Sequence[tuple[Mapping[str, str], float]]]

    def find(self, series: Series) -> list[tuple[Mapping[str, str], float]]:
        """The samples of ``series`` (its name, and its fixed label values)."""
        fixed = series.labels.items()
        return [
            (labels, value)
            for labels, value in self.samples.get(series.name, ())
            if all(labels.get(k) == v for k, v in fixed)
        ]


_SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


def family_of(name: str) -> str:
    """The family a sample or series name belongs to (its ``_total``, ``_bucket``, ``_count``,
    ``_sum`` or ``_created`` suffix off).

    >>> family_of("vllm:request_success_created"), family_of("tgi_queue_size")
    ('vllm:request_success', 'tgi_queue_size')
    """
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def _only(text: str, families: frozenset[str]) -> str:
    """The lines of ``text`` about ``families`` (samples, HELP and TYPE): a server writes
    hundreds of samples a preset never reads, and the parser's time grows with each. A line
    that does not start with a metric name is not exposition (``ExpositionError``)."""
    kept = []
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) > 2 and parts[1] in ("HELP", "TYPE") and family_of(parts[2]) in families:
                kept.append(line)
        elif line.strip():
            end = len(line)
            for stop in ("{", " ", "\t"):
                found = line.find(stop)
                if found != -1:
                    end = min(end, found)
            name = line[:end]
            if not _METRIC_NAME.fullmatch(name):
                raise ExpositionError(
                    f"not Prometheus exposition text: line {number} starts {line[:40]!r}"
                )
            if family_of(name) in families:
                kept.append(line)
    return "".join(kept)


def parse(text: str, families: frozenset[str] | None = None) -> Scrape:
    """``text`` parsed with prometheus-client's parser, only the lines about ``families`` if
    given (``Reader.families``); ``ExpositionError`` if it is not exposition text.

    >>> scrape = parse("# TYPE tgi_request_success counter\\ntgi_request_success 5\\n")
    >>> scrape.find(Series("tgi_request_success"))
    [({}, 5)]
    """
    if families is not None:
        text = _only(text, families)
    samples: dict[str, list[tuple[Mapping[str, str], float]]] = defaultdict(list)
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples[sample.name].append((sample.labels, sample.value))
                if family.type == "counter" and sample.name == family.name + "_total":
                    samples[family.name].append((sample.labels, sample.value))
    except (ValueError, TypeError, IndexError) as error:
        raise ExpositionError(f"not Prometheus exposition text: {error}") from error
    return Scrape(samples)


@dataclass
class Reading:
    """What one scrape gave: the report's contents, and what the relay should log."""

    contents: Contents
    restarted: bool
    """A counter went down (or its ``_created`` changed): the server restarted."""


@dataclass
class _Series:
    value: float
    created: float | None


@dataclass
class Reader:
    """Reads successive scrapes of one server through ``preset``."""

    preset: Preset
    units_per_request: int = buckets.UNITS_PER_REQUEST
    _last: dict[tuple[str, Labels], _Series] = field(default_factory=dict)
    _moved: dict[tuple[str, Labels], float] = field(default_factory=dict)
    """This scrape's delta of each series read so far (a series may serve two signals)."""
    _first: bool = True
    _restarted: bool = False

    @property
    def families(self) -> frozenset[str]:
        """The families the preset reads (to parse only those: ``parse``)."""
        names = []
        for source in self.preset.inputs.values():
            if isinstance(source, Gauge | Counter):
                names.extend(s.name for s in source.series)
            elif isinstance(source, Mean):
                names.extend((source.total.name, *(s.name for s in source.count.series)))
            else:
                names.append(source.name)
        return frozenset(map(family_of, names))

    def read(self, scrape: Scrape) -> Reading:
        """The contents of one report from ``scrape``; the next read counts from this one."""
        self._restarted = False
        self._moved.clear()
        gauges: dict[str, float] = {}
        sketches: dict[str, sketch.LatencySketch] = {}
        missing = {signal.value: reason for signal, reason in self.preset.lacks.items()}
        bounds: dict[str, tuple[float, ...]] = {}
        requests = None
        latency_mean = None
        for signal, source in self.preset.inputs.items():
            absent = _absent(source, scrape)
            if absent is not None:
                missing[signal.value] = absent
                continue
            if isinstance(source, Gauge):
                value = self._gauge(source, scrape)
                problem = _gauge_problem(signal, value)
                if problem is None:
                    gauges[signal.value] = value
            elif isinstance(source, Counter):
                counted = self._counted(source, scrape)
                problem = _count_problem(counted)
                if problem is None:
                    requests = round(counted)
            elif isinstance(source, Mean):
                total = self._counter(source.total, scrape) * source.unit_seconds
                counted = self._counted(source.count, scrape)
                problem = _count_problem(counted) or _gauge_problem(signal, total)
                if problem is None and total and not round(counted):
                    problem = f"its sum rose by {total:g}s while its count did not"
                if problem is None:
                    latency_mean = (total, round(counted))
            else:
                histogram = self._histogram(source, scrape)
                problem = histogram if isinstance(histogram, str) else None
                if not isinstance(histogram, str):
                    sketches[signal.value], bounds[signal.value] = histogram
            if problem is not None:
                missing[signal.value] = problem
        self._first = False
        source = Source(self.preset.name, MappingProxyType(missing), MappingProxyType(bounds))
        contents = Contents(
            gauges=MappingProxyType(gauges),
            sketches=MappingProxyType(sketches),
            units_per_request=self.units_per_request,
            requests=requests,
            latency_mean=latency_mean,
            source=source,
        )
        return Reading(contents, self._restarted)

    # -- one signal ------------------------------------------------------------------------------

    @staticmethod
    def _gauge(source: Gauge, scrape: Scrape) -> float:
        total = 0.0
        for series in source.series:
            values = [value for _, value in scrape.find(series)]
            total += sum(values) / len(values) if source.within_pod == "mean" else sum(values)
        return total

    def _counted(self, counter: Counter, scrape: Scrape) -> float:
        """What ``counter``'s series counted since the last scrape (a term not written yet,
        such as a failure counter before the first failure, counts nothing)."""
        return sum(self._counter(series, scrape) for series in counter.series)

    def _counter(self, series: Series, scrape: Scrape) -> float:
        created = _created(series, scrape)
        return sum(
            self._delta(series.name, labels, value, created.get(_key(labels)))
            for labels, value in scrape.find(series)
        )

    def _delta(
        self, name: str, labels: Mapping[str, str], value: float, created: float | None
    ) -> float:
        """How far one series moved since the last scrape, remembering where it is now."""
        key = (name, _key(labels))
        if key in self._moved:
            return self._moved[key]
        if not 0 <= value < math.inf:  # no count: not remembered, the next one counts from the last
            self._moved[key] = math.nan
            return math.nan
        last = self._last.get(key)
        self._last[key] = _Series(value, created)
        if last is None:
            moved = 0.0 if self._first else value  # a baseline, or a series new since
        elif value < last.value or (created is not None and created != last.created):
            self._restarted = True
            moved = value  # counting again from 0 since a restart
        else:
            moved = value - last.value
        self._moved[key] = moved
        return moved

    def _histogram(
        self, source: Histogram, scrape: Scrape
    ) -> tuple[sketch.LatencySketch, tuple[float, ...]] | str:
        """The observations since the last scrape, each child (label set) spread on its own
        bounds, and every bound seen (in seconds); or why they cannot be reported."""
        created = _created(source.buckets, scrape)
        children: dict[Labels, dict[float, float]] = defaultdict(dict)
        for labels, value in scrape.find(source.buckets):
            le = labels.get("le")
            if le is not None:
                bound = _bound(le)
                if bound is None:
                    return f"a bucket of {source.buckets.name} has le={le[:40]!r}, not a number"
                child = {k: v for k, v in labels.items() if k != "le"}
                children[_key(child)][bound] = value
        sketches, seen = [], set()
        for child, cumulative in children.items():
            labels = dict(child)
            deltas = self._child_deltas(source, labels, cumulative, created.get(child))
            if deltas is None:
                return f"a bucket of {source.buckets.name} is not a count (NaN, infinite or < 0)"
            if max(deltas.values(), default=0.0) * self.units_per_request > MAX_ZERO_COUNT:
                return f"{source.buckets.name} counted more requests than a report carries"
            sketches.append(buckets.spread(deltas, source.unit_seconds, self.units_per_request))
            seen.update(b * source.unit_seconds for b in cumulative if math.isfinite(b))
        merged = sketch.LatencySketch.merge_all(sketches)
        if merged.counts.size and int(merged.counts.max()) > MAX_BIN_COUNT:
            return f"{source.buckets.name} counted more requests than a report carries"
        return merged, tuple(sorted(seen))

    def _child_deltas(
        self,
        source: Histogram,
        labels: Mapping[str, str],
        cumulative: Mapping[float, float],
        created: float | None,
    ) -> dict[float, float] | None:
        """The bucket counts one child gained since the last scrape; all of them after a
        restart (any of its buckets went down, or its ``_created`` changed) or when new. None
        (nothing remembered) when a bucket is not a count."""
        if not all(0 <= value < math.inf for value in cumulative.values()):
            return None
        child = _key(labels)
        keys = {le: (f"{source.buckets.name} le={le!r}", child) for le in cumulative}
        lasts = {le: self._last.get(key) for le, key in keys.items()}
        for le, key in keys.items():
            self._last[key] = _Series(cumulative[le], created)
        if any(last is None for last in lasts.values()):
            return {} if self._first else dict(cumulative)
        reset = any(
            cumulative[le] < last.value or (created is not None and created != last.created)
            for le, last in lasts.items()
            if last is not None
        )
        if reset:
            self._restarted = True
            return dict(cumulative)
        return {le: cumulative[le] - last.value for le, last in lasts.items() if last is not None}


def _key(labels: Mapping[str, str]) -> Labels:
    return frozenset(labels.items())


def _created(series: Series, scrape: Scrape) -> dict[Labels, float]:
    """The ``_created`` time of each labelled child of ``series``, where the server writes
    one (by the child's labels, ``le`` aside)."""
    found = scrape.find(Series(series.created(), series.labels))
    return {_key(labels): value for labels, value in found}


def _absent(source: Input, scrape: Scrape) -> str | None:
    """Why ``source`` cannot be read from ``scrape`` (a family it needs is not there), or None.
    A sum of counters needs one of them (the others may not be written yet); a sum of gauges
    needs all."""
    if isinstance(source, Gauge):
        needed = [s for s in source.series if not scrape.find(s)]
    elif isinstance(source, Counter):
        present = [s for s in source.series if scrape.find(s)]
        needed = [] if present else list(source.series)
    elif isinstance(source, Mean):
        needed = [s for s in (source.total, source.count.series[0]) if not scrape.find(s)]
    else:
        needed = [] if scrape.find(source.buckets) else [source.buckets]
    if not needed:
        return None
    names = ", ".join(s.name for s in needed)
    why = f"{names} is not in the server's metrics"
    if source.requires:
        why += f" (the server writes it only with {source.requires})"
    return why


def _bound(le: str) -> float | None:
    """A bucket's upper bound, or None when ``le`` is not a number (or is NaN)."""
    try:
        bound = float(le)
    except ValueError:
        return None
    return None if math.isnan(bound) else bound


def _count_problem(counted: float) -> str | None:
    """Why a counter's increase cannot be reported, or None."""
    if not 0 <= counted <= MAX_ZERO_COUNT:  # NaN too: a value that was not a count
        return f"its increase {counted:g} is not a count from 0 to {MAX_ZERO_COUNT:g}"
    return None


def _gauge_problem(signal: Signal, value: float) -> str | None:
    """Why a gauge's value cannot be reported, or None."""
    if not math.isfinite(value) or value < 0 or value > MAX_GAUGE_VALUE:
        return f"its value {value:g} is not a finite number from 0 to {MAX_GAUGE_VALUE:g}"
    if signal is Signal.KV_CACHE_UTILIZATION and value > 1:
        return f"its value {value:g} is not a fraction from 0 to 1"
    return None
