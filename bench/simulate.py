"""The what-if simulator's speed: CPU seconds per simulated hour, against a bare event loop.

Scenario (the target of issue 15): one simulated hour at 200 requests/s on average (a sine
from 100 to 300 requests/s with a 20-minute period) through ``apiservice/examples/hpa-tuned.yaml``
with ``maxReplicas`` 50, pods of 4 worker slots with lognormal service times (median 400 ms,
sigma 0.4), a 20 s startup: the HPA runs the Deployment between about 15 and 50 replicas, each
pushing every second. Target: under 30 s on one core, moonshot 5 s; a day at the same rate
should cost 24 hours' worth (linear).

Baseline, measured in the same run on the same machine: the same number of requests through a
bare discrete-event loop in CPython (``heapq``: one push and one pop per request, one c-slot
FIFO queue, nothing else), the floor for any simulator that handles each request as an event
in Python. ``ours / baseline`` is what the pods, the balancer, the pushes into the adapter's
store, the HPA and the bookkeeping cost above that floor.

Each run is a fresh ``python -m bench.simulate --child ...`` process (optionally pinned to one
CPU), reporting CPU seconds (``process_time``), wall seconds, requests and peak RSS; ours and
the baseline alternate, and figures are medians.
"""

from __future__ import annotations

import argparse
import collections
import heapq
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bench import stats

TARGET_SECONDS = 30.0
MOONSHOT_SECONDS = 5.0
HPA = Path(__file__).resolve().parent.parent / "apiservice" / "examples" / "hpa-tuned.yaml"
MAX_REPLICAS = 50
RATE, SWING, PERIOD_SECONDS = 200.0, 100.0, 1200.0
SERVICE = "lognormal:400ms,0.4"
SLOTS = 4


@dataclass(frozen=True)
class SimulateSettings:
    runs: int = 5
    hours: tuple[float, ...] = (1.0, 24.0)
    """Simulated lengths: the first is the figure, the others show how the cost grows."""
    cpu: int | None = None
    """Pin each run to this CPU (one core); None or -1: not pinned."""


def _simulate(hours: float) -> dict[str, Any]:
    """Child: one simulator run of the scenario; its cost."""
    from localcluster import manifests
    from model_server import profiles
    from model_server.service_time import parse_distribution
    from simulator import PodModel, SimulationConfig, simulate

    document = next(d for d in yaml.safe_load_all(HPA.read_text()) if d)
    document["spec"]["maxReplicas"] = MAX_REPLICAS
    config = SimulationConfig(
        profile=profiles.SineProfile(RATE, SWING, PERIOD_SECONDS),
        duration_seconds=hours * 3600,
        pod=PodModel(service_time=parse_distribution(SERVICE), max_concurrency=SLOTS),
    )
    autoscaler = manifests.parse_hpa(document)
    cpu, wall = time.process_time(), time.perf_counter()
    result = simulate(autoscaler, config)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {
        "cpu_seconds": cpu,
        "wall_seconds": wall,
        "requests": result.requests,
        "replica_seconds": sum(end - start for start, end in result.lifetimes),
        "max_replicas": max(row.desired_replicas for row in result.rows),
    }


def _baseline(requests: int) -> dict[str, Any]:
    """Child: ``requests`` Poisson arrivals through one FIFO queue in front of the slots of the
    whole fleet, one heap push and pop per request (draws from numpy up front)."""
    rng = np.random.default_rng(1)
    cpu, wall = time.process_time(), time.perf_counter()
    arrivals = np.cumsum(rng.exponential(1 / RATE, requests)).tolist()
    service = rng.lognormal(np.log(0.4), 0.4, requests).tolist()
    completions: list[tuple[float, int]] = []
    free = SLOTS * MAX_REPLICAS  # the whole fleet's slots behind one queue: a floor, not a model
    waiting: collections.deque[int] = collections.deque()
    latency = 0.0
    for index, arrival in enumerate(arrivals):
        while completions and completions[0][0] <= arrival:
            done, finished = heapq.heappop(completions)
            latency += done - arrivals[finished]
            if waiting:
                following = waiting.popleft()
                heapq.heappush(completions, (done + service[following], following))
            else:
                free += 1
        if free:
            free -= 1
            heapq.heappush(completions, (arrival + service[index], index))
        else:
            waiting.append(index)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"cpu_seconds": cpu, "wall_seconds": wall, "requests": requests, "sum": latency}


def child(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", choices=("simulate", "baseline"), required=True)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--requests", type=int, default=0)
    parser.add_argument("--cpu", type=int)
    args = parser.parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    report = _simulate(args.hours) if args.child == "simulate" else _baseline(args.requests)
    report["max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(report))


def _spawn(settings: SimulateSettings, *argv: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.simulate", *argv]
    if settings.cpu is not None and settings.cpu >= 0:
        command += ["--cpu", str(settings.cpu)]
    done = subprocess.run(command, capture_output=True, timeout=3600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bench.simulate failed: {done.stderr.decode()[-2000:]}")
    return json.loads(done.stdout)


def run(settings: SimulateSettings, log: Callable[[str], Any] = print) -> dict[str, Any]:
    """The figure (median CPU seconds for the first length), its baseline, and the growth."""
    ours: list[dict[str, Any]] = []
    baseline: list[dict[str, Any]] = []
    first = settings.hours[0]
    for number in range(settings.runs):
        pair = ["simulate", "baseline"] if number % 2 == 0 else ["baseline", "simulate"]
        for kind in pair:
            if kind == "simulate":
                ours.append(_spawn(settings, "--child", "simulate", "--hours", str(first)))
                log(f"  simulate {first:g} h: {ours[-1]['cpu_seconds']:.2f} s CPU")
            else:
                requests = ours[-1]["requests"] if ours else int(RATE * first * 3600)
                baseline.append(
                    _spawn(settings, "--child", "baseline", "--requests", str(requests))
                )
                log(f"  bare event loop: {baseline[-1]['cpu_seconds']:.2f} s CPU")
    longer = []
    for hours in settings.hours[1:]:
        longer.append(
            {"hours": hours, **_spawn(settings, "--child", "simulate", "--hours", str(hours))}
        )
        log(f"  simulate {hours:g} h: {longer[-1]['cpu_seconds']:.1f} s CPU")
    cpu = stats.median([r["cpu_seconds"] for r in ours])
    floor = stats.median([r["cpu_seconds"] for r in baseline])
    per_hour = cpu / first
    growth = [
        f"{entry['hours']:g} h: {entry['cpu_seconds']:.1f} s CPU"
        f" ({entry['cpu_seconds'] / entry['hours'] / per_hour:.2f}x the first run's per hour),"
        f" {entry['requests']:,} requests, peak RSS {entry['max_rss_mib']:.0f} MiB"
        for entry in longer
    ]
    requests = stats.median([r["requests"] for r in ours])
    return {
        "name": f"simulate: {first:g} simulated hour at {RATE:g} requests/s, up to"
        f" {MAX_REPLICAS} replicas, CPU seconds on one core",
        "unit": "s",
        "ours": cpu,
        "ours_p90": stats.percentile([r["cpu_seconds"] for r in ours], 90),
        "baseline": floor,
        "ratio": stats.ratio(cpu, floor),
        "target": f"< {TARGET_SECONDS:g} s (moonshot {MOONSHOT_SECONDS:g} s)",
        "met": cpu * 1 / first <= TARGET_SECONDS,
        "wall_seconds": stats.median([r["wall_seconds"] for r in ours]),
        "us_per_request": cpu / requests * 1e6,
        "runs": {"ours": ours, "baseline": baseline, "longer": longer},
        "settings": settings.__dict__,
        "markdown": [
            f"Scenario: hpa-tuned.yaml with maxReplicas {MAX_REPLICAS}, sine {RATE - SWING:g}-"
            f"{RATE + SWING:g} requests/s over {PERIOD_SECONDS / 60:g} min, {SERVICE} service,"
            f" {SLOTS} slots; {requests:,.0f} requests, at most"
            f" {max(r['max_replicas'] for r in ours)} replicas,"
            f" {stats.median([r['replica_seconds'] for r in ours]):,.0f} replica-seconds"
            f" (pushes); {cpu / requests * 1e6:.1f} us of CPU per request in all, the bare loop"
            f" {floor / requests * 1e6:.1f} us. Peak RSS {ours[0]['max_rss_mib']:.0f} MiB.",
            *growth,
        ],
    }


if __name__ == "__main__":
    child(sys.argv[1:])
