"""Requests in, a server's metric families out: the state behind a mimic's ``/metrics``.

``Recorder(surface, ...)`` keeps, for every family of the surface, its series (counter and gauge
values, histogram bucket counts) the way that server would: series created at start-up where the
server creates them, on first use where it does so (TGI), gauges sampled at scrape time or when a
request enters a slot (SGLang). ``arrive()`` and ``answer()`` feed it; ``snapshot(gauges)`` freezes
it for ``exposition.render``.

Pure: time comes from the ``clock`` passed in (only ``_created`` timestamps use it); no I/O, no
asyncio. Not thread-safe; one event loop owns a recorder.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from model_server.mimic.surfaces import OUTCOMES, REQUEST_LABELS, Family, Surface, buckets_for

__all__ = ["Answer", "FamilySnapshot", "Gauges", "Recorder", "Series", "Served", "Snapshot"]


@dataclass(frozen=True)
class Served:
    """What serving one request took (seconds) and, for a language model, produced."""

    queue_seconds: float
    """Waiting for a slot."""
    compute_seconds: float
    """Holding one."""
    prompt_tokens: int = 0
    output_tokens: int = 0
    max_tokens: int = 0
    prefill_seconds: float = 0.0
    decode_seconds: float = 0.0
    tpot_seconds: float = 0.0
    """Time per output token after the first (the decode step time)."""
    finish_reason: str = "stop"

    @property
    def ttft_seconds(self) -> float:
        """Arrival to the first token: the wait plus the prefill."""
        return self.queue_seconds + self.prefill_seconds


@dataclass(frozen=True)
class Answer:
    """One request as the server answered it."""

    kind: str
    """One of ``surfaces.OUTCOMES``."""
    status: int
    method: str
    handler: str
    """The route template (``/v1/completions``, ``/v2/models/{name}/infer``)."""
    seconds: float
    """Arrival to response."""
    request_bytes: int = 0
    response_bytes: int = 0
    served: Served | None = None

    def __post_init__(self) -> None:
        if self.kind not in OUTCOMES:
            raise ValueError(f"unknown outcome {self.kind!r}")
        if (self.kind == "ok") != (self.served is not None):
            raise ValueError("an answer carries a Served exactly when its kind is ok")


@dataclass(frozen=True)
class Gauges:
    """The instantaneous state gauges read."""

    waiting: float = 0.0
    running: float = 0.0
    kv_usage: float = 0.0
    kv_used_tokens: float = 0.0
    kv_capacity_tokens: float = 0.0
    kv_reserved_tokens: float = 0.0
    load_seconds: float = 0.0


@dataclass(frozen=True)
class Series:
    """One labelled series of a family, frozen."""

    labels: tuple[tuple[str, str], ...]
    """(name, value) in the family's declared order."""
    created: float
    value: float = 0.0
    """Counter or gauge value."""
    buckets: tuple[int, ...] = ()
    """Histogram: cumulative count at each bound, then at +Inf."""
    total: float = 0.0
    """Histogram or summary sum."""
    count: int = 0
    """Histogram or summary count."""


@dataclass(frozen=True)
class FamilySnapshot:
    family: Family
    bounds: tuple[float, ...]
    series: tuple[Series, ...]


@dataclass(frozen=True)
class Snapshot:
    surface: Surface
    families: tuple[FamilySnapshot, ...]

    def without(self, *names: str) -> Snapshot:
        """The same scrape with the named families missing (as a filtered or partial one)."""
        unknown = set(names) - {f.family.name for f in self.families}
        if unknown:
            raise KeyError(f"{self.surface.server} has no families {sorted(unknown)}")
        return replace(self, families=tuple(f for f in self.families if f.family.name not in names))


@dataclass
class _Cell:
    created: float
    value: float = 0.0
    counts: list[int] = field(default_factory=list)
    """Histogram: observations per bucket (not cumulative), +Inf last."""
    total: float = 0.0
    count: int = 0


_AT_START = frozenset({"kv_capacity_tokens", "load_seconds"})
"""Gauge feeds a metrics-rs server sets at start-up; its other gauges appear with traffic."""


class Recorder:
    """The metric families of one simulated server process (a restart is a new Recorder)."""

    def __init__(
        self,
        surface: Surface,
        *,
        model: str,
        hostname: str = "localhost",
        pid: int = 1,
        max_model_len: int = 4096,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.surface = surface
        self._clock = clock
        fill = {"{model}": model, "{hostname}": hostname, "{pid}": str(pid)}
        self._constants = {
            f.name: {k: fill.get(v, v) for k, v in {**surface.constants, **f.fixed}.items()}
            for f in surface.families
        }
        self._bounds = {f.name: buckets_for(f, max_model_len) for f in surface.families}
        self._cells: dict[str, dict[tuple[str, ...], _Cell]] = {
            f.name: {} for f in surface.families
        }
        self._names = {f.name: _label_names(surface, f) for f in surface.families}
        self._gauges = Gauges()
        self._last: Served | None = None
        self._touched = False
        self._admitted = False
        for family in surface.families:
            self._create_at_start(family)

    # --- events -------------------------------------------------------------------------------

    def arrive(self) -> None:
        """A request arrived (counted by servers that count on receipt)."""
        self._touched = True
        for family in self.surface.families:
            if family.feed == "arrival":
                self._cell(family, self._constant_labels(family)).value += 1

    def answer(self, answer: Answer) -> None:
        """A request was answered: every family that observes its outcome takes it in."""
        self._touched = True
        if answer.served is not None:
            self._last = answer.served
        for family in self.surface.families:
            if family.kind == "gauge" or family.feed == "arrival":
                continue
            if answer.kind not in family.outcomes:
                continue
            observed = _observation(family.feed, answer)
            if observed is None:
                continue
            value, times = observed
            cell = self._cell(family, self._labels(family, answer))
            self._observe(family, cell, value * family.scale, times)

    def admit(self, gauges: Gauges) -> None:
        """A request entered a slot: servers that set gauges then (SGLang) take this state."""
        if self.surface.gauges_at_admission:
            self._gauges = gauges
            self._admitted = True

    # --- reading ------------------------------------------------------------------------------

    def snapshot(self, gauges: Gauges) -> Snapshot:
        """Every family as a scrape now would show it; ``gauges`` is the state at this instant
        (ignored by servers that set their gauges elsewhere)."""
        current = self._gauges if self.surface.gauges_at_admission else gauges
        families = []
        for family in self.surface.families:
            if family.kind == "gauge":
                self._set_gauge(family, current)
            bounds = self._bounds[family.name]
            cells = self._cells[family.name]
            series = tuple(self._freeze(family, key, cell) for key, cell in cells.items())
            families.append(FamilySnapshot(family, bounds, series))
        return Snapshot(self.surface, tuple(families))

    # --- internals ----------------------------------------------------------------------------

    def _create_at_start(self, family: Family) -> None:
        variable = family.outcome_label or next(
            (name for name in family.labels if name in REQUEST_LABELS), None
        )
        if family.preset:
            if variable is None:
                raise ValueError(f"{family.name} presets values but has no variable label")
            for value in family.preset:
                self._cell(family, self._constant_labels(family, **{variable: value}))
            return
        if variable is not None:
            return  # a series per request label value, created when first seen
        if family.kind == "gauge" and not self._gauge_visible(family):
            return
        if family.kind != "gauge" and self.surface.appear_on_first_use:
            return
        self._cell(family, self._constant_labels(family))

    def _gauge_visible(self, family: Family) -> bool:
        """Whether the server has written this gauge yet: SGLang's after its first logged
        batch, TGI's start-up ones at once and the others with the first request."""
        if self.surface.gauges_at_admission:
            return self._admitted
        if self.surface.appear_on_first_use:
            return self._touched or family.feed in _AT_START or family.feed.startswith("const:")
        return True

    def _constant_labels(self, family: Family, **values: str) -> tuple[str, ...]:
        return tuple(
            values.get(name, self._constants[family.name].get(name, ""))
            for name in self._names[family.name]
        )

    def _labels(self, family: Family, answer: Answer) -> tuple[str, ...]:
        served = answer.served
        request = {
            "finished_reason": served.finish_reason if served else "",
            "status": f"{answer.status // 100}xx",
            "method": answer.method,
            "handler": answer.handler,
        }
        if family.outcome_label is not None:
            request[family.outcome_label] = family.outcomes[answer.kind]
        return tuple(
            request[name] if name in request else self._constants[family.name].get(name, "")
            for name in self._names[family.name]
        )

    def _cell(self, family: Family, labels: tuple[str, ...]) -> _Cell:
        cells = self._cells[family.name]
        cell = cells.get(labels)
        if cell is None:
            cell = _Cell(self._clock())
            if family.kind == "histogram":
                cell.counts = [0] * (len(self._bounds[family.name]) + 1)
            cells[labels] = cell
        return cell

    def _observe(self, family: Family, cell: _Cell, value: float, times: int) -> None:
        if self.surface.library == "tensorflow_serving":
            value = float(int(value))  # TF Serving records int64 microseconds
        if family.kind == "counter":
            cell.value += value * times
        elif family.kind == "summary":
            cell.total += value * times
            cell.count += times
        elif family.kind == "histogram":
            bounds = self._bounds[family.name]
            if self.surface.library == "tensorflow_serving":
                index = bisect.bisect_right(bounds, value)  # TensorFlow: value < bound
            else:
                index = bisect.bisect_left(bounds, value)  # Prometheus: value <= le
            cell.counts[index] += times
            cell.total += value * times
            cell.count += times

    def _set_gauge(self, family: Family, gauges: Gauges) -> None:
        if family.feed.startswith("const:"):
            value = float(family.feed.removeprefix("const:"))
        elif family.feed == "last_queue_ms":
            value = self._last.queue_seconds * 1e3 if self._last else 0.0
        elif family.feed == "last_compute_ms":
            value = self._last.compute_seconds * 1e3 if self._last else 0.0
        else:
            value = float(getattr(gauges, family.feed))
        if self._gauge_visible(family):
            self._cell(family, self._constant_labels(family)).value = value

    def _freeze(self, family: Family, key: tuple[str, ...], cell: _Cell) -> Series:
        labels = tuple(zip(self._names[family.name], key, strict=True))
        if family.kind == "histogram":
            cumulative, running = [], 0
            for count in cell.counts:
                running += count
                cumulative.append(running)
            return Series(
                labels, cell.created, buckets=tuple(cumulative), total=cell.total, count=cell.count
            )
        if family.kind == "summary":
            return Series(labels, cell.created, total=cell.total, count=cell.count)
        return Series(labels, cell.created, value=cell.value)


def _label_names(surface: Surface, family: Family) -> tuple[str, ...]:
    """The label names a series carries: the declared ones, plus the ``pid`` that
    prometheus_client's multiprocess mode adds to gauges kept per process (mode ``all``)."""
    multiprocess = surface.library == "prometheus_client_multiprocess"
    if multiprocess and family.kind == "gauge" and family.multiprocess_mode == "all":
        return (*family.labels, "pid")
    return family.labels


def _observation(feed: str, answer: Answer) -> tuple[float, int] | None:
    """(value, how many times) a family with ``feed`` observes for ``answer``; None: nothing."""
    served = answer.served
    per_answer = {
        "count": 1.0,
        "e2e_seconds": answer.seconds,
        "request_bytes": float(answer.request_bytes),
        "response_bytes": float(answer.response_bytes),
    }
    if feed in per_answer:
        return per_answer[feed], 1
    if served is None:
        return None
    if feed == "itl_seconds":
        gaps = max(0, served.output_tokens - 1)
        return (served.tpot_seconds, gaps) if gaps else None
    per_served = {
        "zero": 0.0,
        "n": 1.0,
        "queue_seconds": served.queue_seconds,
        "compute_seconds": served.compute_seconds,
        "prefill_seconds": served.prefill_seconds,
        "decode_seconds": served.decode_seconds,
        "inference_seconds": served.prefill_seconds + served.decode_seconds,
        "ttft_seconds": served.ttft_seconds,
        "tpot_seconds": served.tpot_seconds,
        "prompt_tokens": float(served.prompt_tokens),
        "output_tokens": float(served.output_tokens),
        "max_tokens": float(served.max_tokens),
    }
    if feed not in per_served:
        raise ValueError(f"unknown feed {feed!r}")
    return per_served[feed], 1
