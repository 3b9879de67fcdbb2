"""The figures a run is judged by: what it cost, how often it missed the SLO, how it moved.

- **replica-seconds**: every pod's life (created to gone: starting and draining pods cost too);
- **over the SLO or not served**: the share of requests answered slower than ``--slo``, shed by
  a pod, refused for want of a ready pod or cut at a drain timeout (requests still in flight
  when the run ends count as neither);
- **p99**: of the answered requests over the whole run;
- **scale events**: syncs that changed the replica count;
- **longest above the SLO**: the longest run of consecutive seconds in which more than 1 % of
  the requests arriving that second missed the SLO or were not served, i.e. their p99 was above
  it;
- **flaps**: scale-downs followed by a scale-up within the HPA's downscale stabilization window
  (``behavior.scaleDown.stabilizationWindowSeconds``, else ``--downscale-stabilization``; at
  least one sync period).

Pure: numpy and the run's result only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from simulator.run import RunResult, SyncRow

ABOVE_SLO_SHARE = 0.01
"""A second is above the SLO when more than this share of its requests missed it (p99 > SLO)."""


@dataclass(frozen=True)
class Summary:
    """One run's figures (one row of ``summary.csv``)."""

    replica_seconds: float
    slo_violation_share: float
    """Share of all requests over the SLO or not served (0 without requests)."""
    p99_seconds: float | None
    """None when no request was answered."""
    scale_events: int
    longest_above_slo_seconds: float
    flaps: int
    max_replicas: int
    requests: int
    not_served: int


def downscale_window_seconds(run: RunResult) -> float:
    """The downscale stabilization window in effect for the run's HPA."""
    behavior = run.autoscaler.spec.behavior
    window = None
    if behavior is not None and behavior.scale_down is not None:
        window = behavior.scale_down.stabilization_window_seconds
    if window is None:
        window = run.config.controller.downscale_stabilization_window_seconds
    return float(window)


def scale_events(rows: Sequence[SyncRow]) -> list[tuple[float, int, int]]:
    """(time, from, to) of every sync that changed the replica count."""
    return [
        (row.time, row.current_replicas, row.desired_replicas)
        for row in rows
        if row.desired_replicas != row.current_replicas
    ]


def count_flaps(events: Sequence[tuple[float, int, int]], window_seconds: float) -> int:
    """Scale-downs followed by a scale-up no more than ``window_seconds`` later."""
    flaps = 0
    for index, (time, before, after) in enumerate(events):
        if after >= before:
            continue
        following = next((e for e in events[index + 1 :] if e[2] > e[1]), None)
        if following is not None and following[0] - time <= window_seconds:
            flaps += 1
    return flaps


def longest_run(flags: npt.NDArray[np.bool_]) -> int:
    """The length of the longest run of True in ``flags``."""
    if not flags.any():
        return 0
    padded = np.concatenate(([0], flags.astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(padded))
    return int((edges[1::2] - edges[::2]).max())


def summarize(run: RunResult) -> Summary:
    """The figures of one run."""
    end = run.config.duration_seconds
    offered = run.offered_per_second
    missed = run.slow_per_second + run.unserved_per_second
    requests = int(offered.sum())
    above = missed > ABOVE_SLO_SHARE * offered
    events = scale_events(run.rows)
    window = max(downscale_window_seconds(run), run.config.controller.sync_period_seconds)
    return Summary(
        replica_seconds=sum(min(gone, end) - created for created, gone in run.lifetimes),
        slo_violation_share=float(missed.sum()) / requests if requests else 0.0,
        p99_seconds=run.latencies.quantile(0.99) if run.latencies.count else None,
        scale_events=len(events),
        longest_above_slo_seconds=float(longest_run(above)),
        flaps=count_flaps(events, window),
        max_replicas=max((r.desired_replicas for r in run.rows), default=0),
        requests=requests,
        not_served=run.unserved,
    )
