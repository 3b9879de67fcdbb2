"""Memory per tracked pod: RSS growth of a store holding 10,000 pods with full 30 s windows.

In process, not over HTTPS: a full window means one report per pod per second of the adapter's
clock for 30 s, i.e. 10,000 pushes/s, several times what one adapter process takes here (about
1,500/s), so a process filled over the network would hold a few slices per pod instead of 30. Each
run is a fresh ``python -m bench.memory_fill`` process: the real decoder and ``Store`` on a
hand-moved clock, the default window and max age, RSS read from /proc before and after (see that
module). Figure: (RSS after filling and querying - RSS before) / pods, median over runs.

The reference is the plain size of the data, not a competitor: the window's latency bins as the
reports carried them, one (index, count) pair of two 32-bit integers per bin per 1 s slice, what a
store keeps to slide a 30 s window exactly without compressing it (a narrower encoding can go
below it). Gauges, labels and names are left out of it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench import stats, workload

TARGET_KIB = 16.0
KIB = 1024
REFERENCE_BYTES_PER_BIN = 8
"""One (index, count) pair of 32-bit integers."""


@dataclass(frozen=True)
class MemorySettings:
    runs: int = 3
    pods: int = 10_000
    seconds: int = 32
    """Seconds of reports per pod: the 30 s window full, plus two to be sure."""
    window_seconds: int = 30
    """The adapter's default window (what ``memory_fill`` runs with); used for the reference."""
    cpus: set[int] | None = None


def one_run(settings: MemorySettings) -> dict[str, Any]:
    """One fresh filling process; its JSON report."""
    argv = [
        sys.executable,
        "-m",
        "bench.memory_fill",
        "--pods",
        str(settings.pods),
        "--seconds",
        str(settings.seconds),
    ]
    for cpu in sorted(settings.cpus or ()):
        argv += ["--cpu", str(cpu)]
    done = subprocess.run(argv, capture_output=True, timeout=900, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bench.memory_fill failed: {done.stderr.decode()[-2000:]}")
    return json.loads(done.stdout)


def per_pod_kib(report: dict[str, Any], stage: str) -> float:
    """RSS growth from the empty store to ``stage``, per pod, in KiB."""
    rss = report["rss_bytes"]
    return (rss[stage] - rss["empty"]) / report["pods"] / KIB


def run(settings: MemorySettings, log: Callable[[str], Any] = print) -> dict[str, Any]:
    """Every run, then the figure: KiB per pod after filling and querying, against the reference."""
    reports = []
    for index in range(settings.runs):
        report = one_run(settings)
        reports.append(report)
        log(
            f"  memory run {index + 1}/{settings.runs}: {per_pod_kib(report, 'queried'):.1f} KiB"
            f" per pod after {settings.seconds} s of reports from {settings.pods:,} pods"
            f" ({report['cpu_us_per_report']:.0f} us CPU per report)"
        )
    return summarize(settings, reports)


def summarize(settings: MemorySettings, reports: list[dict[str, Any]]) -> dict[str, Any]:
    """The figure (KiB per pod after the queries) with every stage's median and the reference."""
    stages = [k for k in reports[0]["rss_bytes"] if k != "empty"]
    per_stage = {stage: stats.median([per_pod_kib(r, stage) for r in reports]) for stage in stages}
    slices = min(settings.seconds, settings.window_seconds)
    reference_kib = slices * workload.BINS_PER_REPORT * REFERENCE_BYTES_PER_BIN / KIB
    ours = per_stage["queried"]
    lines = [
        "Memory per pod (RSS growth / pods, KiB, median of runs) after each stage: "
        + ", ".join(f"{stage} {kib:.1f}" for stage, kib in per_stage.items())
        + f"; reference ({slices} slices x {workload.BINS_PER_REPORT} bins x"
        f" {REFERENCE_BYTES_PER_BIN} B) {reference_kib:.1f} KiB."
    ]
    return {
        "name": f"memory per tracked pod ({settings.pods:,} pods, 30 s window, in process)",
        "unit": "KiB/pod",
        "ours": ours,
        "baseline": reference_kib,
        "ratio": stats.ratio(ours, reference_kib),
        "ratio_is": "ours/reference",
        "ratio_per_run": [stats.ratio(per_pod_kib(r, "queried"), reference_kib) for r in reports],
        "target": f"<= {TARGET_KIB:g} KiB",
        "met": ours <= TARGET_KIB,
        "per_stage_kib": per_stage,
        "settings": {**settings.__dict__, "cpus": sorted(settings.cpus or ())},
        "runs": reports,
        "markdown": lines,
    }
