"""CPU usage of local processes, measured from the OS, as metrics-server would report it.

For CPU-based HPAs the emulated controller needs what ``metrics.k8s.io`` serves: per pod, the CPU
used over a recent window (millicores) and the time it was measured. ``CpuMeter`` samples each
process's cumulative user+system time from ``/proc/<pid>/stat`` and reports the rate over the
interval between its last two samples, as the kubelet's summary does over its scrape interval.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """Cumulative user+system CPU seconds of ``pid`` (children excluded), None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; the fields after its closing ")" are fixed.
    fields = stat.rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_SECOND


@dataclass(frozen=True)
class CpuUsage:
    """What metrics-server reports for one pod."""

    milli_cpu: int
    timestamp: float
    window_seconds: float


class CpuMeter:
    """Usage rates per pid from successive samples."""

    def __init__(
        self, clock: Callable[[], float], read: Callable[[int], float | None] = cpu_seconds
    ):
        self._clock = clock
        self._read = read
        self._last: dict[int, tuple[float, float]] = {}
        self._usage: dict[int, CpuUsage] = {}

    def sample(self, pids: list[int]) -> None:
        """Take a sample of every pid; forget pids no longer listed or no longer running."""
        now = self._clock()
        for pid in pids:
            used = self._read(pid)
            if used is None:
                self._last.pop(pid, None)
                self._usage.pop(pid, None)
                continue
            previous = self._last.get(pid)
            if previous is not None and now > previous[0]:
                rate = (used - previous[1]) / (now - previous[0])
                self._usage[pid] = CpuUsage(round(rate * 1000), now, now - previous[0])
            self._last[pid] = (now, used)
        for pid in set(self._last) - set(pids):
            self._last.pop(pid, None)
            self._usage.pop(pid, None)

    def usage(self, pid: int) -> CpuUsage | None:
        """The latest usage of ``pid``, None until it has two samples."""
        return self._usage.get(pid)
