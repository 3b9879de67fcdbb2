"""Closed-loop infer load, run as its own process: ``python -m bench.infer_load ...``.

``--concurrency`` workers share an aiohttp client with that many keep-alive connections (plain
HTTP); each posts ``--body-file`` to ``--url`` and sends the next request as soon as the answer
is read, so the server is offered as much work as it can take (a throughput ceiling, unlike the
open-loop ``model_server loadgen``). It runs ``--warmup`` seconds unmeasured, then ``--duration``
seconds measured, and prints one JSON object: requests, statuses, answers that differ from
``--expect-file``, transport errors, latency percentiles, its own CPU time and the server's
(``--server-pid``, from /proc) over the measured span.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

from bench import servers, stats

MAX_REQUESTS = 5_000_000
"""A bound on any one run, whatever the duration."""
_HEADERS = {"Content-Type": "application/json"}


class Load:
    """Shared state of the workers of one run."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.url = args.url
        self.body = args.body_file.read_bytes()
        self.expect = args.expect_file.read_bytes() if args.expect_file else None
        self.statuses: Counter[int] = Counter()
        self.unexpected = 0
        self.errors: Counter[str] = Counter()
        self.latencies: list[float] = []
        self.started = 0
        self.measure_from = 0.0
        self.stop_at = 0.0


async def worker(load: Load, session: aiohttp.ClientSession) -> None:
    while load.started < MAX_REQUESTS:
        begun = time.perf_counter()
        if begun >= load.stop_at:
            return
        load.started += 1
        try:
            async with session.post(load.url, data=load.body, headers=_HEADERS) as response:
                answer = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as error:
            if begun >= load.measure_from:
                load.errors[type(error).__name__] += 1
            continue
        ended = time.perf_counter()
        if begun < load.measure_from or ended > load.stop_at:
            continue
        load.statuses[status] += 1
        load.latencies.append(ended - begun)
        if status != 200 or (load.expect is not None and answer != load.expect):
            load.unexpected += 1
            if load.unexpected <= 3:
                print(f"unexpected answer {status}: {answer[:200]!r}", file=sys.stderr)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    load = Load(args)
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = time.perf_counter()
        load.measure_from = start + args.warmup
        load.stop_at = load.measure_from + args.duration
        server_cpu: dict[str, float] = {}
        own_cpu: dict[str, float] = {}

        async def sample_cpu() -> None:
            await asyncio.sleep(args.warmup)
            server_cpu["start"] = servers.cpu_seconds(args.server_pid) if args.server_pid else 0
            own_cpu["start"] = time.process_time()
            await asyncio.sleep(args.duration)
            server_cpu["end"] = servers.cpu_seconds(args.server_pid) if args.server_pid else 0
            own_cpu["end"] = time.process_time()

        await asyncio.gather(
            sample_cpu(), *(worker(load, session) for _ in range(args.concurrency))
        )
    completed = sum(load.statuses.values())
    server_cpu_seconds = server_cpu["end"] - server_cpu["start"]
    return {
        "requests": completed,
        "seconds": args.duration,
        "requests_per_second": completed / args.duration,
        "statuses": {str(k): v for k, v in sorted(load.statuses.items())},
        "unexpected_answers": load.unexpected,
        "transport_errors": dict(load.errors),
        "latency": stats.summary_ms(load.latencies),
        "server_cpu_seconds": server_cpu_seconds,
        "server_cpu_us_per_request": server_cpu_seconds / completed * 1e6 if completed else None,
        "server_cpu_utilisation": server_cpu_seconds / args.duration,
        "client_cpu_utilisation": (own_cpu["end"] - own_cpu["start"]) / args.duration,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.infer_load")
    parser.add_argument("--url", required=True, help="http://127.0.0.1:PORT/v2/models/NAME/infer")
    parser.add_argument("--body-file", type=Path, required=True)
    parser.add_argument("--expect-file", type=Path, help="the exact answer every request must get")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--server-pid", type=int)
    parser.add_argument("--cpu", type=int, action="append", help="pin this process to CPU(s)")
    args = parser.parse_args()
    if not args.url.startswith("http://127.0.0.1:"):
        parser.error("load targets http://127.0.0.1 only")
    if args.duration <= 0 or args.duration > 600:
        parser.error("--duration must be in (0, 600]")
    if not 1 <= args.concurrency <= 1024:
        parser.error("--concurrency must be in [1, 1024]")
    if args.cpu:
        os.sched_setaffinity(0, set(args.cpu))
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
