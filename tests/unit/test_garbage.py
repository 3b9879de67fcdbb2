"""``adapter.garbage``: the collector's pauses measured, start-up objects frozen."""

from __future__ import annotations

import gc
import subprocess
import sys

from adapter import garbage


def test_pauses_are_counted_by_generation_and_bucket() -> None:
    wall = iter([0.0, 0.0004, 10.0, 10.5])
    cpu = iter([0.0, 0.0003, 5.0, 5.1])
    pauses = garbage.Pauses(clock=lambda: next(wall), cpu_clock=lambda: next(cpu))
    pauses.observe("start", {"generation": 0})
    pauses.observe("stop", {"generation": 0})
    pauses.observe("start", {"generation": 2})
    pauses.observe("stop", {"generation": 2})
    assert pauses.counts[0][garbage.PAUSE_BUCKETS.index(0.0005)] == 1
    assert pauses.counts[2][-1] == 1, "0.5 s is above every bucket"
    assert (pauses.longest[2], round(pauses.cpu_seconds[2], 6)) == (0.5, 0.1)
    assert sum(pauses.counts[1]) == 0


def test_recording_sees_real_collections_and_stops() -> None:
    pauses = garbage.Pauses()
    with pauses.recording():
        gc.collect(1)
    gc.collect(1)
    assert sum(pauses.counts[1]) == 1
    assert pauses.observe not in gc.callbacks


def test_start_up_objects_are_frozen_and_young_collections_come_less_often() -> None:
    code = (
        "import gc; from adapter import garbage; frozen = garbage.freeze_startup_objects();"
        " print(frozen, gc.get_threshold()[0], len(gc.get_objects()))"
    )
    frozen, threshold, left = map(
        int,
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, check=True, text=True
        ).stdout.split(),
    )
    assert threshold == garbage.GENERATION0_THRESHOLD
    assert frozen > 5_000 and left < 100, "what existed at start-up is out of the collector's way"
