"""The demo's pure parts: the trace, the summary figures, the lines, the files it writes."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from localcluster import demo, hpa, manifests
from localcluster.closedloop import LoopResult, Sample
from localcluster.controller import SyncRecord

TRACE = ((0.0, 30.0), (10.0, 200.0), (40.0, 30.0))
START = 1000.0


def sample(t: float, live: int, ready: int, queue: float | None, p99: float | None) -> Sample:
    return Sample(START + t, live, ready, queue, p99)


def record(t: float, current: int, ready: int, desired: int, reason: str = "") -> SyncRecord:
    events = (hpa.Event(hpa.NORMAL, "SuccessfulRescale", reason),) if reason else ()
    return SyncRecord(START + t, current, ready, desired, (), (), events)


def result(samples: list[Sample], syncs: list[SyncRecord]) -> LoopResult:
    autoscaler = manifests.load_hpa(demo.DEMO_HPA)
    report = {"slo_violation_share": 0.25, "latency_seconds": {"p99": 1.5}}
    return LoopResult(START, syncs, samples, report, autoscaler)


@pytest.mark.parametrize(
    ("seconds", "rate"), [(0, 30), (9.9, 30), (10, 200), (39.9, 200), (40, 30), (500, 30)]
)
def test_offered_rate_follows_the_trace(seconds: float, rate: float) -> None:
    assert demo.offered_rate(TRACE, seconds) == rate


def test_summary_replica_seconds_and_recovery() -> None:
    samples = [
        sample(0, 1, 1, 0, 0.1),
        sample(10, 1, 1, 0, 0.1),
        sample(15, 3, 1, 40, 2.0),  # overloaded: queue above one per ready pod
        sample(20, 3, 3, 9, 2.0),  # still above (9 > 3)
        sample(25, 3, 3, 2, 2.0),  # back under: recovered 15 s after the step at 10 s
        sample(30, 3, 3, 0, 0.2),
    ]
    summary = demo.summarize(result(samples, []), TRACE)
    assert summary.replica_seconds == 10 * 1 + 5 * 1 + 5 * 3 + 5 * 3 + 5 * 3
    assert summary.recovery_seconds == 15
    assert summary.max_replicas == 3
    assert summary.slo_violation_share == 0.25
    assert summary.client_p99_seconds == 1.5


def test_never_recovered_is_none() -> None:
    samples = [sample(t, 1, 1, 100, 3.0) for t in range(11, 40)]
    assert demo.summarize(result(samples, []), TRACE).recovery_seconds is None


def test_metric_targets_of_the_demo_hpa() -> None:
    targets = demo.metric_targets(manifests.load_hpa(demo.DEMO_HPA))
    assert targets == {
        "inference_concurrency": 3.0,
        "inference_queue_depth": 4.0,
        "inference_latency_p99_seconds": 0.5,
    }


def test_sync_line_and_timeline_files(tmp_path: Path) -> None:
    samples = [sample(t, 1 + (t >= 15), 1 + (t >= 20), 5.0 * (t < 25), 0.2) for t in range(0, 60)]
    syncs = [record(0, 1, 1, 1), record(15, 1, 1, 2, "New size: 2"), record(30, 2, 2, 2)]
    loop_result = result(samples, syncs)
    line = demo.sync_line(syncs[1], samples[15], START, TRACE)
    assert "15s" in line and "load   200 rps" in line and "replicas 1/2" in line
    assert "queue    5.0" in line and "p99   0.20s" in line
    assert line.endswith("HPA: SuccessfulRescale: New size: 2")

    demo.write_timeline_csv(tmp_path / "timeline.csv", loop_result, TRACE)
    rows = list(csv.DictReader((tmp_path / "timeline.csv").read_text().splitlines()))
    assert [r["time_seconds"] for r in rows] == ["0.0", "15.0", "30.0"]
    assert rows[1]["offered_rps"] == "200"
    assert rows[1]["desired_replicas"] == "2"
    assert rows[1]["queue_depth"] == "5"
    assert rows[1]["p99_seconds"] == "0.2000"

    demo.plot_timeline(tmp_path / "timeline.png", loop_result, TRACE, 0.5, "test")
    assert (tmp_path / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_trace_file_for_the_simulator_is_the_demos() -> None:
    """``apiservice/examples/demo/load-demo.csv`` replays the demo's load in the simulator."""
    from model_server import profiles

    table = profiles.parse_rate_csv((demo.DEMO_DIR / "load-demo.csv").read_text())
    assert tuple(zip(table.times_seconds, table.rates, strict=True)) == demo.TRACE
