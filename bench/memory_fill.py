"""Fill a store as a busy adapter's would be, in a fresh process, and report its RSS growth.

Run: ``python -m bench.memory_fill --pods 10000 --seconds 32``. Everything the harness needs
(interpreter, imports, the pods' report bodies) is allocated first; then, after a ``gc.collect``,
the resident set size is read (``/proc/self/status``). Then every pod reports once per second of
a hand-moved clock for ``--seconds`` seconds, each report a real body (``adapter.client``'s
encoder, ~50 bins and two gauges) through ``adapter.push.decode_report`` and ``Store.apply`` with
the default window (30 s) and max age, so every window is full. RSS is read again after some of
those seconds and after one per-pod p99 query by selector and one Deployment p99 query (which may
build cached sketches). It prints one JSON object.

A separate process, so that nothing of the parent's (other benchmarks' garbage, their numpy
buffers) is counted.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import time
from typing import Any

from adapter import heap, selectors
from adapter.provider import CustomMetricInfo
from bench import query, servers, workload


def _rss_after_collect() -> int:
    gc.collect()
    return servers.rss_bytes()


async def _queries(fleet: query.Fleet) -> int:
    """The two queries an HPA on p99 would make; how many pods the list query served."""
    values = await fleet.provider.get_metric_by_selector(
        CustomMetricInfo("pods", True, query.P99),
        workload.NAMESPACE,
        selectors.parse(query.SELECTOR),
        selectors.EVERYTHING,
    )
    await fleet.provider.get_metric_by_name(
        CustomMetricInfo("deployments.apps", True, query.P99),
        workload.NAMESPACE,
        workload.DEPLOYMENT,
        selectors.EVERYTHING,
    )
    return len(values)


def fill(pods: int, seconds: int, checkpoints: set[int]) -> dict[str, Any]:
    """RSS before, at ``checkpoints`` (seconds pushed), after all and after the queries."""
    fleet = query.Fleet(pods)
    rss = {"empty": _rss_after_collect()}
    started = time.process_time()
    for second in range(1, seconds + 1):
        fleet.push_round()
        if second in checkpoints:
            rss[f"after_{second}s"] = _rss_after_collect()
    cpu = time.process_time() - started
    rss["filled"] = _rss_after_collect()
    served = asyncio.run(_queries(fleet))
    rss["queried"] = _rss_after_collect()
    if len(fleet.store) != pods or served != pods:
        raise RuntimeError(f"tracked {len(fleet.store)} and served {served} of {pods} pods")
    return {
        "pods": pods,
        "seconds": seconds,
        "reports": pods * seconds,
        "window_seconds": fleet.config.store.window_seconds,
        "rss_bytes": rss,
        "cpu_us_per_report": cpu / (pods * seconds) * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.memory_fill")
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=32)
    parser.add_argument("--cpu", type=int, action="append", help="pin this process to CPU(s)")
    args = parser.parse_args()
    if args.cpu:
        os.sched_setaffinity(0, set(args.cpu))
    if not 1 <= args.pods <= 100_000 or not 1 <= args.seconds <= 600:
        parser.error("--pods in [1, 100000], --seconds in [1, 600]")
    checkpoints = {1, args.seconds // 3, 2 * args.seconds // 3}
    heap.keep_freed_memory()  # as the adapter process does: RSS counts what it keeps
    print(json.dumps(fill(args.pods, args.seconds, checkpoints)))


if __name__ == "__main__":
    main()
