"""``localcluster.cpu``: per-process CPU rates, as metrics-server would report them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from localcluster import cpu


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def used() -> dict[int, float]:
    """CPU seconds per pid, moved by hand; a missing pid is a process that is gone."""
    return {}


@pytest.fixture
def meter(clock: Clock, used: dict[int, float]) -> cpu.CpuMeter:
    return cpu.CpuMeter(clock, used.get)


@pytest.mark.parametrize(
    ("interval", "cpu_delta", "milli"),
    [
        (1.0, 0.5, 500),
        (2.0, 1.0, 500),
        (0.5, 1.0, 2000),  # two cores busy
        (4.0, 0.0, 0),
        (3.0, 0.001, 0),  # 0.33 millicores rounds to 0
        (3.0, 0.002, 1),
        (15.0, 7.5, 500),
    ],
)
def test_rate_over_the_interval_between_the_last_two_samples(
    meter: cpu.CpuMeter,
    clock: Clock,
    used: dict[int, float],
    interval: float,
    cpu_delta: float,
    milli: int,
) -> None:
    used[7] = 10.0
    meter.sample([7])
    assert meter.usage(7) is None, "one sample gives no rate"
    clock.now += interval
    used[7] += cpu_delta
    meter.sample([7])
    assert meter.usage(7) == cpu.CpuUsage(milli, clock.now, interval)


def test_each_rate_uses_only_the_latest_interval(
    meter: cpu.CpuMeter, clock: Clock, used: dict[int, float]
) -> None:
    used[7] = 0.0
    for step, (seconds, busy) in enumerate([(1.0, 1.0), (2.0, 0.5), (1.0, 0.0)]):
        clock.now += seconds
        used[7] += busy
        meter.sample([7])
        if step:
            assert meter.usage(7) == cpu.CpuUsage(round(1000 * busy / seconds), clock.now, seconds)


def test_a_sample_at_the_same_instant_keeps_the_previous_rate(
    meter: cpu.CpuMeter, clock: Clock, used: dict[int, float]
) -> None:
    used[7] = 0.0
    meter.sample([7])
    clock.now += 1
    used[7] = 0.25
    meter.sample([7])
    used[7] = 0.9
    meter.sample([7])
    assert meter.usage(7) == cpu.CpuUsage(250, clock.now, 1.0)


def test_pids_are_measured_independently(
    meter: cpu.CpuMeter, clock: Clock, used: dict[int, float]
) -> None:
    used.update({1: 0.0, 2: 5.0})
    meter.sample([1, 2])
    clock.now += 2
    used[1] += 2.0
    used[2] += 0.2
    used[3] = 1.0  # first seen now
    meter.sample([1, 2, 3])
    assert [u.milli_cpu if u else None for u in map(meter.usage, [1, 2, 3])] == [1000, 100, None]


def test_unlisted_pids_are_forgotten_and_need_two_samples_again(
    meter: cpu.CpuMeter, clock: Clock, used: dict[int, float]
) -> None:
    used.update({1: 0.0, 2: 0.0})
    meter.sample([1, 2])
    clock.now += 1
    used[1] = used[2] = 0.5
    meter.sample([1, 2])
    assert meter.usage(2) is not None
    clock.now += 1
    meter.sample([1])
    assert meter.usage(2) is None
    assert meter.usage(1) == cpu.CpuUsage(0, clock.now, 1.0)
    clock.now += 1
    used[2] = 3.0
    meter.sample([1, 2])
    assert meter.usage(2) is None, "a pid listed again starts over"


def test_a_pid_that_went_away_is_forgotten_even_if_still_listed(
    meter: cpu.CpuMeter, clock: Clock, used: dict[int, float]
) -> None:
    used[9] = 0.0
    meter.sample([9])
    clock.now += 1
    used[9] = 0.8
    meter.sample([9])
    assert meter.usage(9) is not None
    del used[9]
    clock.now += 1
    meter.sample([9])
    assert meter.usage(9) is None, "a process that exited has no usage to report"
    clock.now += 1
    used[9] = 0.1  # the pid is reused by a new process: it must not be compared to the old one
    meter.sample([9])
    assert meter.usage(9) is None


def test_a_meter_that_saw_nothing_reports_nothing(meter: cpu.CpuMeter) -> None:
    meter.sample([])
    meter.sample([1, 2])
    assert meter.usage(1) is None


# -- real processes ----------------------------------------------------------------------------


def test_own_cpu_seconds_grow_with_a_busy_loop() -> None:
    before = cpu.cpu_seconds(os.getpid())
    assert before is not None and before > 0
    start = time.process_time()
    while time.process_time() - start < 0.2:
        pass
    after = cpu.cpu_seconds(os.getpid())
    assert after is not None
    assert after - before >= 0.15


def test_a_pid_that_does_not_exist_has_no_cpu_seconds() -> None:
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    assert cpu.cpu_seconds(pid_max + 1) is None


BUSY_CHILD = """
import sys, time
with open("/proc/self/comm", "w") as comm:
    comm.write("odd) name (x")
print("ready", flush=True)
start = time.process_time()
while time.process_time() - start < 0.3:
    pass
print("done", flush=True)
sys.stdin.read()
"""


def test_a_child_named_with_parentheses_is_measured_then_gone() -> None:
    """The command name in ``/proc/<pid>/stat`` may hold spaces and parentheses."""
    meter = cpu.CpuMeter(time.monotonic)
    with subprocess.Popen(
        [sys.executable, "-c", BUSY_CHILD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        assert Path(f"/proc/{child.pid}/comm").read_text() == "odd) name (x\n"
        meter.sample([child.pid])
        assert child.stdout.readline() == "done\n"
        meter.sample([child.pid])
        usage = meter.usage(child.pid)
        child.communicate("")
    assert usage is not None
    busy_seconds = usage.milli_cpu * usage.window_seconds / 1000
    assert busy_seconds >= 0.28, "the 0.3 s busy loop ran between the two samples"
    assert usage.milli_cpu <= 1050, "one thread cannot use more than one core"
    assert cpu.cpu_seconds(child.pid) is None, "a reaped child has no /proc entry"
