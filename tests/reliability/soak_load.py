"""The soak's load, run as its own process: ``python -m tests.reliability.soak_load URL ...``.

Mixed traffic over keep-alive TLS connections: ``--pods`` pods push realistic reports (two gauges
and a ~50-bin latency sketch, from ``bench.workload``) round-robin, each with a ``seq`` one above
its last, and every ``QUERY_EVERY``-th operation is instead a query an HPA or ``kubectl`` makes
(per-pod p99 and queue depth by selector, a Deployment's pooled p99, an external metric, one pod),
with the client certificate.

First the capacity: ``--capacity-seconds`` closed-loop, as fast as ``--connections`` connections
go (after one unmeasured second that also creates every pod). Then the soak: open-loop at
``--load`` times that capacity for ``--soak-seconds``, operations started on schedule whatever
the answers do, so a slowing server shows up as latency rather than as a slower client.
Meanwhile the adapter's resident memory (``--server-pid``) is sampled twice a second.

Prints one JSON object: the capacity and the rate, the statuses and errors, per operation of the
soak its scheduled time, kind and latency (from its start), how late operations started, the
memory samples and the adapter's CPU utilisation.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import ssl
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench import servers, workload
from tests.rawhttp import RawHttp, Request

NAMESPACE = "soak"
QUERY_EVERY = 10
"""One operation in ten is a query, the rest are pushes."""
VARIANTS_PER_POD = 4
"""Distinct sketches per pod, cycled, so a pod's window holds more than one report's bins."""
TICK_SECONDS = 0.001
"""How often the open loop hands out the operations that have come due."""
RSS_SAMPLE_SECONDS = 0.5


def query_paths(pods: int) -> list[str]:
    """What the HPA and an operator ask, over all the soak's pods or one of them."""
    custom = f"/apis/custom.metrics.k8s.io/v1beta2/namespaces/{NAMESPACE}"
    one_pod = workload.identities(pods, NAMESPACE)[pods // 2].name
    return [
        f"{custom}/pods/*/inference_latency_p99_seconds?labelSelector=app%3Dmodel",
        f"{custom}/pods/*/inference_queue_depth?labelSelector=app%3Dmodel",
        f"{custom}/deployments.apps/{workload.DEPLOYMENT}/inference_latency_p99_seconds",
        f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{NAMESPACE}/inference_queue_depth"
        f"?labelSelector=deployment%3D{workload.DEPLOYMENT}",
        f"{custom}/pods/{one_pod}/inference_requests_per_second",
    ]


@dataclass
class Traffic:
    """What the next operation is, and what the operations got."""

    push_headers: dict[str, str]
    templates: list[list[tuple[bytes, bytes]]]
    queries: list[str]
    seqs: list[int] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    wrong: int = 0
    """Answers other than the expected 200 (the first few are kept in ``wrong_answers``)."""
    wrong_answers: list[str] = field(default_factory=list)
    done: int = 0
    _pushes: itertools.count[int] = field(default_factory=itertools.count)
    _queries: itertools.count[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.seqs = [0] * len(self.templates)

    async def operate(self, connection: RawHttp, index: int) -> str:
        """Operation ``index``: a push or (every ``QUERY_EVERY``-th) a query; returns the kind."""
        if index % QUERY_EVERY == QUERY_EVERY - 1:
            path = self.queries[next(self._queries) % len(self.queries)]
            await self._send(connection, "query", Request("GET", path, {}), b'{"kind":"')
            return "query"
        await self.push(connection)
        return "push"

    async def push(self, connection: RawHttp) -> None:
        """The next push: pods in turn, each one's sketches in turn, ``seq`` one up."""
        number = next(self._pushes)
        pod = number % len(self.templates)
        self.seqs[pod] += 1
        head, tail = self.templates[pod][(number // len(self.templates)) % VARIANTS_PER_POD]
        request = Request(
            "POST", "/push/v1", self.push_headers, head + str(self.seqs[pod]).encode() + tail
        )
        await self._send(connection, "push", request, b'{"accepted":true}')

    async def _send(self, connection: RawHttp, kind: str, request: Request, start: bytes) -> None:
        try:
            status, _, answer = await connection.exchange(request)
        except (OSError, EOFError, TimeoutError, ValueError) as error:
            self.errors[f"{kind} {type(error).__name__}"] += 1
            await connection.close()
            return
        self.statuses[f"{kind} {status}"] += 1
        if status != 200 or not answer.startswith(start):
            self.wrong += 1
            if self.wrong <= 5:
                self.wrong_answers.append(f"{kind} {status}: {answer[:300]!r}")
        self.done += 1


def traffic(args: argparse.Namespace) -> Traffic:
    rng = np.random.default_rng(11)
    now = time.time()
    templates = [
        [workload.body_template(rng, pod, now) for _ in range(VARIANTS_PER_POD)]
        for pod in workload.pod_loads(args.pods, NAMESPACE)
    ]
    token = args.token_file.read_text().strip()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return Traffic(headers, templates, query_paths(args.pods))


async def closed_loop(
    connections: list[RawHttp], load: Traffic, operations: itertools.count[int], seconds: float
) -> int:
    """Operations back to back on every connection for ``seconds``; how many completed."""
    stop_at, before = time.monotonic() + seconds, load.done

    async def worker(connection: RawHttp) -> None:
        while time.monotonic() < stop_at:
            await load.operate(connection, next(operations))

    await asyncio.gather(*(worker(connection) for connection in connections))
    return load.done - before


async def open_loop(
    connections: list[RawHttp],
    load: Traffic,
    operations: itertools.count[int],
    rate: float,
    seconds: float,
) -> list[tuple[float, str, float, float]]:
    """``rate`` operations a second on schedule for ``seconds``, each taken by the next free
    connection: per operation its scheduled offset, kind, latency and how late it started."""
    loop = asyncio.get_running_loop()
    start, total = loop.time(), int(rate * seconds)
    jobs: asyncio.Queue[float | None] = asyncio.Queue()
    samples: list[tuple[float, str, float, float]] = []

    async def worker(connection: RawHttp) -> None:
        while (scheduled := await jobs.get()) is not None:
            began = loop.time()
            kind = await load.operate(connection, next(operations))
            samples.append((scheduled - start, kind, loop.time() - began, began - scheduled))

    workers = [asyncio.create_task(worker(connection)) for connection in connections]
    queued = 0
    while queued < total:
        due = min(total, int((loop.time() - start) * rate) + 1)
        for number in range(queued, due):
            jobs.put_nowait(start + number / rate)
        queued = due
        await asyncio.sleep(TICK_SECONDS)
    for _ in workers:
        jobs.put_nowait(None)
    await asyncio.gather(*workers)
    return samples


class Cpu:
    """The CPU utilisation of the adapter and of this process since it was made."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.started = time.monotonic()
        self.server = servers.cpu_seconds(server_pid)
        self.client = time.process_time()

    def utilisation(self) -> dict[str, float]:
        elapsed = time.monotonic() - self.started
        return {
            "adapter": (servers.cpu_seconds(self.server_pid) - self.server) / elapsed,
            "load": (time.process_time() - self.client) / elapsed,
        }


async def sample_rss(pid: int, samples: list[tuple[float, int]], start: float) -> None:
    while True:
        samples.append((time.monotonic() - start, servers.rss_bytes(pid)))
        await asyncio.sleep(RSS_SAMPLE_SECONDS)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    load = traffic(args)
    context = ssl.create_default_context(cafile=str(args.ca_file))
    context.load_cert_chain(str(args.client_cert), str(args.client_key))
    port = int(args.url.rsplit(":", 1)[1])
    connections = [RawHttp(port, context) for _ in range(args.connections)]
    operations = itertools.count()
    # Unmeasured: every pod pushes once (so queries find them all), then a second of the mix.
    for _ in load.templates:
        await load.push(connections[0])
    await closed_loop(connections, load, operations, 1.0)
    cpu = Cpu(args.server_pid)
    capacity = await closed_loop(connections, load, operations, args.capacity_seconds)
    capacity_per_second = capacity / args.capacity_seconds
    capacity_cpu = cpu.utilisation()
    rate = args.load * capacity_per_second
    rss: list[tuple[float, int]] = []
    cpu = Cpu(args.server_pid)
    sampler = asyncio.create_task(sample_rss(args.server_pid, rss, cpu.started))
    samples = await open_loop(connections, load, operations, rate, args.soak_seconds)
    sampler.cancel()
    elapsed = time.monotonic() - cpu.started
    soak_cpu = cpu.utilisation()
    for connection in connections:
        await connection.close()
    lags = [sample[3] for sample in samples]
    return {
        "capacity_per_second": capacity_per_second,
        "rate_per_second": rate,
        "pods": args.pods,
        "soak_seconds": elapsed,
        "capacity_cpu_utilisation": capacity_cpu,
        "soak_cpu_utilisation": soak_cpu,
        "statuses": dict(load.statuses),
        "errors": dict(load.errors),
        "wrong": load.wrong,
        "wrong_answers": load.wrong_answers,
        "operations": [[round(t, 4), kind, round(latency, 6)] for t, kind, latency, _ in samples],
        "start_lag_p99_seconds": float(np.percentile(lags, 99)),
        "start_lag_max_seconds": max(lags),
        "rss": rss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.soak_load")
    parser.add_argument("url", help="https://127.0.0.1:PORT")
    parser.add_argument("--ca-file", type=Path, required=True)
    parser.add_argument("--token-file", type=Path, required=True)
    parser.add_argument("--client-cert", type=Path, required=True)
    parser.add_argument("--client-key", type=Path, required=True)
    parser.add_argument("--server-pid", type=int, required=True)
    parser.add_argument("--pods", type=int, default=200)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--capacity-seconds", type=float, default=3.0)
    parser.add_argument("--load", type=float, default=0.7, help="share of the capacity")
    parser.add_argument("--soak-seconds", type=float, default=60.0)
    args = parser.parse_args()
    if not args.url.startswith("https://127.0.0.1:"):
        parser.error("the soak targets 127.0.0.1 only")
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
