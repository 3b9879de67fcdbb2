"""What a simulation writes: timelines, the summary table, and plots.

Per run, in its own folder: ``timeline.csv`` (one row per HPA sync) and ``timeline.png``. For
the whole invocation: ``summary.csv`` (one row per run), the same table printed, ``compare.png``
overlaying the runs when there are several manifests, and ``pareto.png`` (replica-seconds
against SLO misses, one point per swept value) for ``--sweep``.

The timeline's per-sync request counts cover the requests that *arrived* since the previous
sync (so a slow request counts in the interval it arrived in, even if answered later).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from localcluster import hpa
from simulator.run import RunResult
from simulator.summary import Summary

SUMMARY_COLUMNS = (
    "replica_seconds",
    "slo_violation_share",
    "p99_seconds",
    "scale_events",
    "longest_above_slo_seconds",
    "flaps",
    "max_replicas",
    "requests",
    "not_served",
)


@dataclass(frozen=True)
class Labelled:
    """A run with what tells it apart: its manifest and, in a sweep, the swept value."""

    manifest: str
    """The manifest's file name without extension."""
    value: str | None
    run: RunResult
    summary: Summary

    @property
    def name(self) -> str:
        return self.manifest if self.value is None else f"{self.manifest} {self.value}"


def metric_columns(autoscaler: hpa.HorizontalPodAutoscaler) -> list[str]:
    """One column per spec metric, ``hpa_<name>`` (numbered when a name repeats)."""
    names: list[str] = []
    for spec in autoscaler.spec.metrics:
        name = f"hpa_{spec.metric_name or spec.resource or spec.type}"
        names.append(name if name not in names else f"{name}_{len(names) + 1}")
    return names


def metric_targets(autoscaler: hpa.HorizontalPodAutoscaler) -> list[float | None]:
    """Each spec metric's target in base units (per pod for AverageValue), if it has one."""
    targets: list[float | None] = []
    for spec in autoscaler.spec.metrics:
        milli = spec.target.average_value_milli or spec.target.value_milli
        targets.append(None if milli is None else milli / 1000)
    return targets


def per_sync_counts(run: RunResult) -> npt.NDArray[np.int64]:
    """For each sync row: requests that arrived since the previous sync, how many of them missed
    the SLO while answered, and how many were not served (shape ``(rows, 3)``)."""
    seconds = np.array([int(row.time) for row in run.rows], dtype=np.int64)
    columns = (run.offered_per_second, run.slow_per_second, run.unserved_per_second)
    through = [np.concatenate(([0], np.cumsum(c))) for c in columns]
    previous = np.concatenate(([0], seconds[:-1]))
    return np.stack([t[seconds] - t[previous] for t in through], axis=1)


def _number(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}g}"


def write_timeline(path: Path, run: RunResult) -> None:
    """``timeline.csv``: one row per sync."""
    counts = per_sync_counts(run)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["time_seconds", "offered_rps", "desired_replicas", "ready_replicas",
             *metric_columns(run.autoscaler), "queue_depth", "p99_seconds", "requests",
             "over_slo", "shed", "decision"]
        )  # fmt: skip
        for row, (requests, slow, shed) in zip(run.rows, counts.tolist(), strict=True):
            writer.writerow(
                [
                    f"{row.time:g}",
                    f"{run.config.profile.rate_at(row.time):g}",
                    row.desired_replicas,
                    row.ready_replicas,
                    *(_number(v) for v in row.metric_values),
                    _number(row.queue_depth),
                    _number(row.p99_seconds),
                    requests,
                    slow,
                    shed,
                    row.decision,
                ]
            )


def write_summary(path: Path, runs: Sequence[Labelled], sweep_key: str | None) -> None:
    """``summary.csv``: one row per run."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["manifest", *([sweep_key] if sweep_key else []), *SUMMARY_COLUMNS])
        for labelled in runs:
            summary = labelled.summary
            writer.writerow(
                [
                    labelled.manifest,
                    *([labelled.value] if sweep_key else []),
                    f"{summary.replica_seconds:.0f}",
                    f"{summary.slo_violation_share:.4f}",
                    _number(summary.p99_seconds),
                    summary.scale_events,
                    f"{summary.longest_above_slo_seconds:.0f}",
                    summary.flaps,
                    summary.max_replicas,
                    summary.requests,
                    summary.not_served,
                ]
            )


def table(runs: Sequence[Labelled], sweep_key: str | None) -> str:
    """The summary as an aligned text table, as printed."""
    header = ["HPA", *([sweep_key] if sweep_key else []), "replica-seconds",
              "over SLO or shed", "p99", "scale events", "longest above SLO", "flaps",
              "max replicas"]  # fmt: skip
    lines = [header]
    for labelled in runs:
        summary = labelled.summary
        p99 = summary.p99_seconds
        lines.append(
            [
                labelled.manifest,
                *([labelled.value or ""] if sweep_key else []),
                f"{summary.replica_seconds:,.0f}",
                f"{summary.slo_violation_share * 100:.2f} %",
                "-" if p99 is None else f"{p99:.3f} s",
                str(summary.scale_events),
                f"{summary.longest_above_slo_seconds:.0f} s",
                str(summary.flaps),
                str(summary.max_replicas),
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            cell.ljust(width) if column == 0 else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(line, widths, strict=True))
        )
        for line in lines
    )


# --- plots ------------------------------------------------------------------------------------


def _pyplot():  # type: ignore[no-untyped-def]
    """matplotlib's pyplot on the file-only backend (imported late: it takes a second)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    return pyplot


def _save(figure: Any, path: Path, pyplot: Any, bottom: float = 0.06) -> None:
    """Fixed margins rather than ``tight_layout``, which renders every label twice (it was
    most of a plot's time)."""
    figure.subplots_adjust(left=0.1, right=0.91, bottom=bottom, top=0.94, hspace=0.12)
    figure.savefig(path, dpi=90)
    pyplot.close(figure)


def _sync_times(run: RunResult) -> list[float]:
    return [row.time for row in run.rows]


def _missed_share(run: RunResult) -> list[float]:
    """Per sync interval, the share of requests over the SLO or not served."""
    counts = per_sync_counts(run)
    missed = counts[:, 1] + counts[:, 2]
    return np.divide(missed, counts[:, 0], out=np.zeros(len(missed)), where=counts[:, 0] > 0)


def plot_timeline(path: Path, labelled: Labelled) -> None:
    """Load, replicas, the HPA's metrics against their targets, queue depth and p99."""
    pyplot = _pyplot()
    run = labelled.run
    times = _sync_times(run)
    figure, axes = pyplot.subplots(5, 1, figsize=(10, 11), sharex=True)
    load, replicas, ratios, queue, latency = axes
    grid = np.linspace(0.0, run.config.duration_seconds, 2000)
    load.plot(grid, run.config.profile.rates_at(grid), color="tab:gray")
    load.set_ylabel("offered load (rps)")
    replicas.step(times, [r.desired_replicas for r in run.rows], where="post", label="desired")
    replicas.step(
        times, [r.ready_replicas for r in run.rows], where="post", label="ready", linestyle="--"
    )
    replicas.set_ylabel("replicas")
    replicas.legend(loc="upper left")
    for index, (name, target) in enumerate(
        zip(metric_columns(run.autoscaler), metric_targets(run.autoscaler), strict=True)
    ):
        if target:
            values = [
                np.nan if r.metric_values[index] is None else r.metric_values[index] / target
                for r in run.rows
            ]
            ratios.plot(times, values, label=name.removeprefix("hpa_"))
    ratios.axhline(1.0, color="tab:red", linestyle=":", label="target")
    ratios.set_ylabel("metric / target")
    ratios.set_yscale("symlog", linthresh=1.0)
    ratios.set_ylim(bottom=0.0)
    ratios.legend(loc="upper left", fontsize="small")
    queue.plot(times, [r.queue_depth or 0 for r in run.rows], color="tab:orange")
    queue.set_ylabel("queue depth (sum)")
    latency.plot(times, [r.p99_seconds or 0 for r in run.rows], color="tab:purple", label="p99")
    slo = run.config.slo_seconds
    latency.axhline(slo, color="tab:red", linestyle=":", label=f"SLO {slo:g}s")
    latency.set_ylabel(f"p99 over {run.config.store.window_seconds:g} s (s)")
    share = latency.twinx()
    share.plot(
        times, _missed_share(run), color="tab:red", alpha=0.4, label="share over SLO or shed"
    )
    share.set_ylabel("over SLO or shed")
    share.set_ylim(0, 1)
    lines = latency.get_legend_handles_labels()
    extra = share.get_legend_handles_labels()
    latency.legend(lines[0] + extra[0], lines[1] + extra[1], loc="upper left")
    latency.set_xlabel("time (s)")
    for axis in axes:
        axis.grid(alpha=0.3)
    figure.suptitle(f"simulated: {labelled.name}")
    _save(figure, path, pyplot)


def plot_compare(path: Path, runs: Sequence[Labelled]) -> None:
    """The runs overlaid: load, desired replicas, p99 and the share of requests missed."""
    pyplot = _pyplot()
    figure, axes = pyplot.subplots(4, 1, figsize=(10, 9), sharex=True)
    load, replicas, latency, missed = axes
    first = runs[0].run
    grid = np.linspace(0.0, first.config.duration_seconds, 2000)
    load.plot(grid, first.config.profile.rates_at(grid), color="tab:gray")
    load.set_ylabel("offered load (rps)")
    for labelled in runs:
        run = labelled.run
        times = _sync_times(run)
        replicas.step(
            times, [r.desired_replicas for r in run.rows], where="post", label=labelled.name
        )
        latency.plot(times, [r.p99_seconds or 0 for r in run.rows], label=labelled.name)
        missed.plot(times, _missed_share(run), label=labelled.name)
    replicas.set_ylabel("desired replicas")
    replicas.legend(loc="upper left", fontsize="small")
    latency.axhline(first.config.slo_seconds, color="tab:red", linestyle=":")
    latency.set_ylabel("p99 (s)")
    missed.set_ylabel("over SLO or shed")
    missed.set_xlabel("time (s)")
    for axis in axes:
        axis.grid(alpha=0.3)
    figure.suptitle("simulated: the same traffic under each HPA")
    _save(figure, path, pyplot)


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes (lower is better), by x."""
    order = sorted(range(len(points)), key=lambda i: points[i])
    front: list[int] = []
    for index in order:
        if not front or points[index][1] < points[front[-1]][1]:
            front.append(index)
    return front


def plot_pareto(path: Path, runs: Sequence[Labelled], sweep_key: str) -> None:
    """Replica-seconds against the share of requests missed, a point per swept value."""
    pyplot = _pyplot()
    figure, axis = pyplot.subplots(figsize=(8, 6))
    manifests = list(dict.fromkeys(labelled.manifest for labelled in runs))
    for manifest in manifests:
        mine = [labelled for labelled in runs if labelled.manifest == manifest]
        xs = [labelled.summary.replica_seconds for labelled in mine]
        ys = [labelled.summary.slo_violation_share * 100 for labelled in mine]
        axis.plot(xs, ys, marker="o", linestyle=":", label=manifest)
        for x, y, labelled in zip(xs, ys, mine, strict=True):
            axis.annotate(labelled.value or "", (x, y), textcoords="offset points", xytext=(4, 4))
    points = [(r.summary.replica_seconds, r.summary.slo_violation_share * 100) for r in runs]
    front = pareto_front(points)
    axis.plot(
        [points[i][0] for i in front],
        [points[i][1] for i in front],
        color="tab:red",
        alpha=0.4,
        linewidth=3,
        label="Pareto front",
    )
    axis.set_xlabel("replica-seconds")
    axis.set_ylabel("requests over the SLO or not served (%)")
    axis.set_title(f"sweep of {sweep_key}: cost against SLO misses")
    axis.grid(alpha=0.3)
    axis.legend()
    _save(figure, path, pyplot, bottom=0.1)
