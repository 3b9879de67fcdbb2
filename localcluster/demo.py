"""``inference-adapter demo``: what the HPA does with a manifest under a load step, on one machine.

Starts the closed loop (``localcluster.closedloop``) with one model replica and the demo HPA,
drives a load that forces a scale-up and later a scale-down, prints one line per sync (time,
offered load, replicas ready/desired, queue depth, p99, what the HPA decided and why) and writes
``timeline.csv`` and ``timeline.png`` to ``--out``. ``--compare`` runs the same trace under an
HPA on CPU utilization, one on queue depth and one on p99, and reports them side by side.
See docs/demo.md.
"""

from __future__ import annotations

import asyncio
import csv
import itertools
import logging
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from localcluster import hpa
from localcluster.closedloop import ClosedLoop, LoopConfig, LoopResult, Sample
from localcluster.controller import SyncRecord

logger = logging.getLogger(__name__)

REPOSITORY = Path(__file__).resolve().parent.parent
DEMO_DIR = REPOSITORY / "apiservice" / "examples" / "demo"
DEMO_HPA = DEMO_DIR / "hpa-demo.yaml"
COMPARED = {
    "cpu": DEMO_DIR / "hpa-compare-cpu.yaml",
    "queue-depth": DEMO_DIR / "hpa-compare-queue-depth.yaml",
    "p99": DEMO_DIR / "hpa-compare-p99.yaml",
}
TRACE = ((0.0, 30.0), (30.0, 200.0), (95.0, 30.0))
"""(start second, requests per second): a quiet start, a step, a quiet tail."""
DURATION_SECONDS = 180.0
SLO_SECONDS = 0.5


@dataclass(frozen=True)
class Summary:
    """The figures a run is judged by."""

    replica_seconds: float
    slo_violation_share: float
    recovery_seconds: float | None
    """From the step until the queue is back under one waiting request per ready pod."""
    max_replicas: int
    client_p99_seconds: float | None


def write_trace(path: Path, trace: Sequence[tuple[float, float]]) -> None:
    path.write_text("time_seconds,rate\n" + "".join(f"{t:g},{r:g}\n" for t, r in trace))


def offered_rate(trace: Sequence[tuple[float, float]], seconds: float) -> float:
    """The trace's rate at ``seconds`` after the start."""
    rate = 0.0
    for start, value in trace:
        if seconds >= start:
            rate = value
    return rate


def summarize(result: LoopResult, trace: Sequence[tuple[float, float]]) -> Summary:
    """Replica-seconds, SLO misses and recovery time of one run."""
    samples = result.samples
    replica_seconds = sum(
        earlier.live_replicas * (later.time - earlier.time)
        for earlier, later in itertools.pairwise(samples)
    )
    step = next(
        start for (start, rate), (_, before) in zip(trace[1:], trace, strict=False) if rate > before
    )
    recovery = None
    overloaded = False
    for sample in samples:
        since_step = sample.time - result.started - step
        if since_step < 0 or sample.queue_depth is None:
            continue
        if sample.queue_depth > sample.ready_replicas:
            overloaded = True
        elif overloaded or since_step > 10:
            recovery = since_step if overloaded else 0.0
            break
    report = result.load_report
    return Summary(
        replica_seconds=replica_seconds,
        slo_violation_share=report.get("slo_violation_share") or 0.0,
        recovery_seconds=recovery,
        max_replicas=max((s.live_replicas for s in samples), default=0),
        client_p99_seconds=report["latency_seconds"]["p99"],
    )


def _number(value: float | None, unit: str = "", digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}{unit}"


def sync_line(
    record: SyncRecord, sample: Sample | None, started: float, trace: Sequence[tuple[float, float]]
) -> str:
    """The one line printed per sync period."""
    elapsed = record.time - started
    queue = sample.queue_depth if sample else None
    p99 = sample.p99_seconds if sample else None
    return (
        f"{elapsed:5.0f}s  load {offered_rate(trace, elapsed):5.0f} rps  "
        f"replicas {record.ready_replicas}/{record.desired_replicas}  "
        f"queue {_number(queue, digits=1):>6}  p99 {_number(p99, 's'):>7}  HPA: {record.reason()}"
    )


def write_timeline_csv(
    path: Path, result: LoopResult, trace: Sequence[tuple[float, float]]
) -> None:
    """One row per sync: time, offered load, ready and desired replicas, queue depth, p99."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["time_seconds", "offered_rps", "ready_replicas", "desired_replicas", "queue_depth",
             "p99_seconds", "decision"]
        )  # fmt: skip
        for record in result.syncs:
            sample = _sample_at(result.samples, record.time)
            elapsed = record.time - result.started
            writer.writerow(
                [
                    f"{elapsed:.1f}",
                    f"{offered_rate(trace, elapsed):g}",
                    record.ready_replicas,
                    record.desired_replicas,
                    ""
                    if sample is None or sample.queue_depth is None
                    else f"{sample.queue_depth:g}",
                    ""
                    if sample is None or sample.p99_seconds is None
                    else f"{sample.p99_seconds:.4f}",
                    record.reason(),
                ]
            )


def _sample_at(samples: Sequence[Sample], moment: float) -> Sample | None:
    before = [s for s in samples if s.time <= moment]
    return before[-1] if before else (samples[0] if samples else None)


def metric_targets(autoscaler: hpa.HorizontalPodAutoscaler) -> dict[str, float]:
    """Each metric's target in base units: per pod for Pods metrics, the value for Object ones."""
    targets = {}
    for spec in autoscaler.spec.metrics:
        milli = spec.target.average_value_milli or spec.target.value_milli
        if spec.metric_name is not None and milli is not None:
            targets[spec.metric_name] = milli / 1000
    return targets


def plot_timeline(
    path: Path,
    result: LoopResult,
    trace: Sequence[tuple[float, float]],
    slo_seconds: float,
    title: str,
) -> None:
    """Load, replicas, queue depth and p99 against time, the HPA's targets drawn; a PNG."""
    targets = metric_targets(result.autoscaler)
    queue_target = targets.get("inference_queue_depth")
    p99_target = targets.get("inference_latency_p99_seconds")
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    times = [s.time - result.started for s in result.samples]
    figure, axes = pyplot.subplots(4, 1, figsize=(10, 9), sharex=True)
    load_axis, replica_axis, queue_axis, latency_axis = axes
    load_axis.step(times, [offered_rate(trace, t) for t in times], where="post", color="tab:gray")
    load_axis.set_ylabel("offered load (rps)")
    replica_axis.step(
        times, [s.ready_replicas for s in result.samples], where="post", label="ready"
    )
    sync_times = [r.time - result.started for r in result.syncs]
    replica_axis.step(
        sync_times,
        [r.desired_replicas for r in result.syncs],
        where="post",
        label="desired",
        linestyle="--",
    )
    replica_axis.set_ylabel("replicas")
    replica_axis.legend(loc="upper left")
    queue_axis.plot(times, [s.queue_depth or 0 for s in result.samples], color="tab:orange")
    if queue_target is not None:
        ready = [max(1, s.ready_replicas) for s in result.samples]
        queue_axis.plot(
            times, [queue_target * r for r in ready], color="tab:red", linestyle=":",
            label=f"target ({queue_target:g} per ready pod)",
        )  # fmt: skip
        queue_axis.legend(loc="upper left")
    queue_axis.set_ylabel("queue depth (sum)")
    latency_axis.plot(times, [s.p99_seconds or 0 for s in result.samples], color="tab:purple")
    latency_axis.axhline(slo_seconds, color="tab:red", linestyle=":", label=f"SLO {slo_seconds:g}s")
    if p99_target is not None and p99_target != slo_seconds:
        latency_axis.axhline(
            p99_target, color="tab:green", linestyle="--", label=f"target {p99_target:g}s"
        )
    latency_axis.set_ylabel("p99 over 30 s (s)")
    latency_axis.set_xlabel("time (s)")
    latency_axis.legend(loc="upper left")
    for axis in axes:
        axis.grid(alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    pyplot.close(figure)


def _print_summary(name: str, summary: Summary) -> None:
    recovery = (
        "not recovered" if summary.recovery_seconds is None else f"{summary.recovery_seconds:.0f}s"
    )
    print(
        f"{name}: {summary.replica_seconds:.0f} replica-seconds, "
        f"{summary.slo_violation_share * 100:.1f}% of requests over the SLO or not served, "
        f"recovered {recovery} after the step, at most {summary.max_replicas} replicas, "
        f"client p99 {_number(summary.client_p99_seconds, 's')}"
    )


async def run_scenario(
    manifest: Path, work_dir: Path, trace: Sequence[tuple[float, float]], duration: float
) -> LoopResult:
    """One closed-loop run of ``trace`` under the HPA in ``manifest``."""
    config = LoopConfig(hpa_manifest=manifest, work_dir=work_dir, slo_seconds=SLO_SECONDS)
    trace_file = work_dir / "load.csv"
    await asyncio.to_thread(work_dir.mkdir, parents=True, exist_ok=True)
    write_trace(trace_file, trace)
    async with ClosedLoop(config) as loop:
        print(
            f"HPA {manifest.name}: adapter at {loop.adapter_url}, load through {loop.balancer_url}"
        )
        started = loop.clock()

        def on_sync(record: SyncRecord, sample: Sample | None) -> None:
            print(sync_line(record, sample, started, trace), flush=True)

        return await loop.run(trace_file, duration, on_sync)


def _title(result: LoopResult) -> str:
    targets = ", ".join(
        f"{name} {value:g}" for name, value in metric_targets(result.autoscaler).items()
    )
    return f"HPA {result.autoscaler.name} on {targets or 'CPU utilization'}"


async def _demo(out_dir: Path, compare: bool) -> int:
    if not compare:
        result = await run_scenario(DEMO_HPA, out_dir, TRACE, DURATION_SECONDS)
        write_timeline_csv(out_dir / "timeline.csv", result, TRACE)
        plot_timeline(out_dir / "timeline.png", result, TRACE, SLO_SECONDS, _title(result))
        _print_summary(f"HPA {DEMO_HPA.name}", summarize(result, TRACE))
        print(f"wrote {out_dir / 'timeline.csv'} and {out_dir / 'timeline.png'}")
        return 0
    summaries = {}
    for name, manifest in COMPARED.items():
        work = out_dir / f"compare-{name}"
        result = await run_scenario(manifest, work, TRACE, DURATION_SECONDS)
        write_timeline_csv(work / "timeline.csv", result, TRACE)
        plot_timeline(work / "timeline.png", result, TRACE, SLO_SECONDS, _title(result))
        summaries[name] = summarize(result, TRACE)
    print("\n| HPA on | replica-seconds | requests over SLO | recovery after step | max replicas |")
    print("|---|---:|---:|---:|---:|")
    for name, summary in summaries.items():
        recovery = (
            "never" if summary.recovery_seconds is None else f"{summary.recovery_seconds:.0f} s"
        )
        print(
            f"| {name} | {summary.replica_seconds:.0f} | {summary.slo_violation_share * 100:.1f} % "
            f"| {recovery} | {summary.max_replicas} |"
        )
    return 0


def main(out_dir: Path, compare: bool) -> int:
    """Run the demo; Ctrl-C or SIGTERM stops it and every process it started."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print(
            "inference-adapter demo: the plot needs matplotlib: pip install -e '.[demo]'",
            file=sys.stderr,
        )
        return 2

    async def guarded() -> int:
        task = asyncio.ensure_future(_demo(out_dir, compare))
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, task.cancel)
        try:
            return await task
        except asyncio.CancelledError:
            print("stopped; every process the demo started has been stopped", file=sys.stderr)
            return 130

    out_dir.mkdir(parents=True, exist_ok=True)
    return asyncio.run(guarded())
