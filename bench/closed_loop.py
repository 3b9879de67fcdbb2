"""The closed-loop load engine shared by ``bench.load`` (push) and ``bench.infer_load`` (infer).

Child side: ``--concurrency`` workers share an aiohttp client with that many keep-alive
connections; each posts the next body from a pluggable :class:`Source` and sends the next request
as soon as the answer is read. A run is ``--warmup`` seconds unmeasured, then ``--duration``
seconds measured, and reports one JSON object: requests, statuses, answers that were not the
expected one, transport errors, latency percentiles, its own CPU time and the server's
(``--server-pid``, from /proc) over the measured span, plus whatever the source adds.

Parent side: :func:`spawn` starts such a load process and reads its report, and
:func:`alternate` runs ours and the baseline in turns, alternating who goes first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from adapter import eventloop
from bench import servers, stats

MAX_REQUESTS = 5_000_000
"""A bound on any one run, whatever the duration."""
WARMUP_RUN_SECONDS = 1.0
"""The measured span of the unrecorded warm-up run each server gets before the recorded runs."""


class Source(Protocol):
    """Where the requests of one run go and what they carry."""

    url: str
    headers: dict[str, str]
    expect: bytes | None
    """The exact answer body every request must get (None: any body, as long as it is a 200)."""
    ssl: ssl.SSLContext | bool
    """What ``aiohttp.TCPConnector(ssl=...)`` gets (True: aiohttp's default)."""

    def next_body(self) -> bytes: ...

    def report(self) -> dict[str, Any]:
        """Fields appended to the run's JSON report."""
        ...


class Load:
    """Shared state of the workers of one run."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.statuses: Counter[int] = Counter()
        self.unexpected = 0
        self.errors: Counter[str] = Counter()
        self.latencies: list[float] = []
        self.started = 0
        self.measure_from = 0.0
        self.stop_at = 0.0


async def worker(load: Load, session: aiohttp.ClientSession) -> None:
    source = load.source
    while load.started < MAX_REQUESTS:
        begun = time.perf_counter()
        if begun >= load.stop_at:
            return
        load.started += 1
        body = source.next_body()
        try:
            async with session.post(source.url, data=body, headers=source.headers) as response:
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
        if status != 200 or (source.expect is not None and answer != source.expect):
            load.unexpected += 1
            if load.unexpected <= 3:
                print(f"unexpected answer {status}: {answer[:200]!r}", file=sys.stderr)


async def run(source: Source, args: argparse.Namespace) -> dict[str, Any]:
    load = Load(source)
    connector = aiohttp.TCPConnector(ssl=source.ssl, limit=args.concurrency)
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
        **source.report(),
    }


# -- the command line of a load process ------------------------------------------------------


def add_adapter_arguments(parser: argparse.ArgumentParser) -> None:
    """Where a pushing process sends its reports: the adapter's URL, its CA, the push token."""
    parser.add_argument("--url", required=True, help="https://127.0.0.1:PORT")
    parser.add_argument("--ca-file", type=Path, required=True)
    parser.add_argument("--token-file", type=Path, required=True)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every load process takes besides its source's."""
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--server-pid", type=int)
    parser.add_argument("--cpu", type=int, action="append", help="pin this process to CPU(s)")


def parse_args(parser: argparse.ArgumentParser, url_prefix: str) -> argparse.Namespace:
    """Parse, and refuse a target other than ``url_prefix`` (127.0.0.1) or an unbounded run."""
    args = parser.parse_args()
    if not args.url.startswith(url_prefix):
        parser.error(f"load targets {url_prefix.removesuffix(':')} only")
    if args.duration <= 0 or args.duration > 600:
        parser.error("--duration must be in (0, 600]")
    return args


def execute(args: argparse.Namespace, make_source: Callable[[argparse.Namespace], Source]) -> None:
    """Pin to ``--cpu``, run the load from ``make_source(args)`` and print its JSON report."""
    if args.cpu:
        os.sched_setaffinity(0, set(args.cpu))
    source = make_source(args)
    print(json.dumps(eventloop.run(run(source, args), eventloop.default())))


# -- the parent side: start a load process, alternate ours and the baseline -----------------------


class RunSettings(Protocol):
    """What :func:`spawn` and :func:`alternate` read of a benchmark's settings."""

    @property
    def runs(self) -> int: ...

    @property
    def duration_seconds(self) -> float: ...

    @property
    def concurrency(self) -> int: ...

    @property
    def warmup_seconds(self) -> float: ...


def spawn(
    module: str,
    source_argv: list[str],
    server: servers.Server,
    settings: RunSettings,
    load_cpus: set[int] | None,
    duration: float,
) -> dict[str, Any]:
    """Run ``python -m module`` with ``source_argv`` against ``server``, bounded in time; its
    report with ``stderr`` (the tail) and ``valid`` (every answer was the expected 200)."""
    argv = [
        sys.executable,
        "-m",
        module,
        *source_argv,
        "--concurrency",
        str(settings.concurrency),
        "--duration",
        str(duration),
        "--warmup",
        str(settings.warmup_seconds),
        "--server-pid",
        str(server.pid),
    ]
    for cpu in sorted(load_cpus or ()):
        argv += ["--cpu", str(cpu)]
    limit = settings.warmup_seconds + duration + 120
    done = subprocess.run(argv, capture_output=True, timeout=limit, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{module} failed: {done.stderr.decode()[-2000:]}")
    result = json.loads(done.stdout)
    result["stderr"] = done.stderr.decode()[-1000:]
    result["valid"] = (
        result["requests"] > 0
        and set(result["statuses"]) == {"200"}
        and result["unexpected_answers"] == 0
        and not result["transport_errors"]
    )
    return result


def alternate(
    label: str,
    settings: RunSettings,
    ours: Callable[[float], dict[str, Any]],
    baseline: Callable[[float], dict[str, Any]],
    log: Callable[[str], Any],
) -> dict[str, list[dict[str, Any]]]:
    """One unrecorded warm-up run each (imports, first connections, allocator growth), then
    ``settings.runs`` rounds of one ``settings.duration_seconds`` run each, alternating who goes
    first so that drift hits both. ``ours`` and ``baseline`` run the load for so many measured
    seconds and return its report; the reports by name ("ours", "baseline")."""
    contenders = [("ours", ours), ("baseline", baseline)]
    for _, one_run in contenders:
        one_run(WARMUP_RUN_SECONDS)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in contenders}
    for index in range(settings.runs):
        order = list(contenders)
        if index % 2:
            order.reverse()  # alternate who goes first, so drift hits both
        for name, one_run in order:
            result = one_run(settings.duration_seconds)
            results[name].append(result)
            log(
                f"  {label} run {index + 1}/{settings.runs} {name:8s}"
                f" {result['requests_per_second']:8.0f} req/s"
                f"  server CPU {result['server_cpu_utilisation']:.0%}"
                f" ({result['server_cpu_us_per_request'] or 0:.0f} us/req)"
                f"  client CPU {result['client_cpu_utilisation']:.0%}"
                f"  statuses {result['statuses']}" + ("" if result["valid"] else "  INVALID")
            )
    return results
