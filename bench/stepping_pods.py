"""Pods whose latency steps up once, each pushing with the real client.

Run: ``python -m bench.stepping_pods --url https://127.0.0.1:PORT --ca-file F --token-file F``.

Each of ``--pods`` pods has its own ``adapter.client.PushClient`` at the default push interval
(started at a random phase) and a ``LatencyRecorder`` fed ``--rate`` requests per second with
latencies around ``--before`` seconds (lognormal, sigma 0.1). After ``--steady-seconds`` plus a
random part of ``--step-spread`` seconds, a pod's latencies jump to around ``--after`` seconds;
that instant is its step. After the last step and ``--hold-seconds`` it prints one JSON line per
pod: its name, the step (Unix seconds) and every push as (collect, acknowledged) times, so the
parent can tell when the first data after the step reached the adapter. 127.0.0.1 only.

With ``--metrics-port`` each pod also exports the same latencies as the model server does
(``inference_request_duration_seconds``, ``model_server.metrics.LATENCY_BUCKETS``) at
``/metrics/<pod>`` for Prometheus to scrape; with ``--samples-out`` every observation is written
as (Unix time, seconds) rows to a ``.npy`` file, for exact quantiles of the same requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
from typing import Any

import numpy as np
from aiohttp import web
from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest

from adapter.client import LatencyRecorder, PodIdentity, PushClient, TokenFile
from bench import closed_loop
from model_server.metrics import LATENCY_BUCKETS

NAMESPACE = "bench-freshness"
LABELS = {"app": "fresh"}
SIGMA = 0.1
TICK_SECONDS = 0.01


class TimedPushClient(PushClient):
    """The real client, noting when each push collected its data and when it was answered.

    ``run`` collects, then starts one ``_deliver`` per replica at once (the bench's one URL is
    an address: one replica), so a delivery's start is when its data was collected.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pushes: list[tuple[float, float]] = []

    async def _deliver(self, *args: Any, **kwargs: Any) -> None:
        collected = time.time()
        await super()._deliver(*args, **kwargs)
        self.pushes.append((collected, time.time()))


class SteppingPod:
    """One pod: its client, its recorder, its latency level and when it stepped."""

    def __init__(self, index: int, args: argparse.Namespace, rng: np.random.Generator) -> None:
        self.identity = PodIdentity(
            NAMESPACE,
            f"fresh-{index:02d}",
            uid=f"fresh-{index}-{os.getpid()}",
            labels=LABELS,
            deployment="fresh",
        )
        self.recorder = LatencyRecorder()
        self.client = TimedPushClient(
            [args.url],
            self.identity,
            TokenFile(args.token_file),
            self.recorder,
            lambda: {"inference_queue_depth": 0, "inference_concurrency": 1},
            ca_file=args.ca_file,
        )
        self.registry = CollectorRegistry()
        self.histogram = Histogram(
            "inference_request_duration_seconds",
            "End-to-end latency of served requests",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        for gauge, value in (("inference_queue_depth", 0), ("inference_concurrency", 1)):
            Gauge(gauge, gauge, registry=self.registry).set(value)
        self.level = args.before
        self.step_delay = args.steady_seconds + float(rng.uniform(0, args.step_spread))
        self.step_unix: float | None = None

    async def push_forever(self, phase: float) -> None:
        await asyncio.sleep(phase)
        async with self.client:
            await self.client.run()


async def traffic(
    pods: list[SteppingPod], args: argparse.Namespace, started: float, samples: list[np.ndarray]
) -> None:
    """``--rate`` observations per pod per second until every pod stepped and the hold ended;
    each tick's observations are appended to ``samples`` as (Unix time, seconds) rows."""
    rng = np.random.default_rng(int(started))
    per_tick = args.rate * TICK_SECONDS
    owed = 0.0
    end = started + max(p.step_delay for p in pods) + args.hold_seconds
    while (now := time.monotonic()) < end:
        for pod in pods:
            if pod.step_unix is None and now - started >= pod.step_delay:
                pod.level, pod.step_unix = args.after, time.time()
        owed += per_tick
        count, owed = int(owed), owed - int(owed)
        stamp = time.time()
        for pod in pods:
            values = rng.lognormal(np.log(pod.level), SIGMA, count)
            for value in values:
                pod.recorder.observe(float(value))
                pod.histogram.observe(float(value))
            samples.append(np.column_stack([np.full(count, stamp), values]))
        await asyncio.sleep(TICK_SECONDS)


async def serve_metrics(pods: list[SteppingPod], port: int) -> web.AppRunner:
    """Each pod's exposition at ``/metrics/<pod>`` on 127.0.0.1:``port``."""
    by_name = {pod.identity.name: pod for pod in pods}

    async def metrics(request: web.Request) -> web.Response:
        pod = by_name.get(request.match_info["pod"])
        if pod is None:
            raise web.HTTPNotFound()
        return web.Response(body=generate_latest(pod.registry), content_type="text/plain")

    app = web.Application()
    app.router.add_get("/metrics/{pod}", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    rng = np.random.default_rng()
    pods = [SteppingPod(i, args, rng) for i in range(args.pods)]
    runner = await serve_metrics(pods, args.metrics_port) if args.metrics_port else None
    tasks = [asyncio.create_task(pod.push_forever(random.random())) for pod in pods]
    samples: list[np.ndarray] = []
    try:
        await traffic(pods, args, time.monotonic(), samples)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if runner is not None:
            await runner.cleanup()
    if args.samples_out is not None:
        np.save(args.samples_out, np.concatenate(samples) if samples else np.empty((0, 2)))
    return [
        {
            "pod": pod.identity.name,
            "step_unix": pod.step_unix,
            "pushes": pod.client.pushes,
            "delivered": pod.client.pushers[0].stats.delivered,
            "failed_attempts": pod.client.pushers[0].stats.failed_attempts,
        }
        for pod in pods
    ]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stepping_pods")
    closed_loop.add_adapter_arguments(parser)
    parser.add_argument("--pods", type=int, default=10)
    parser.add_argument("--rate", type=float, default=100.0, help="requests/s per pod")
    parser.add_argument("--before", type=float, default=0.05, help="latency before, seconds")
    parser.add_argument("--after", type=float, default=0.4, help="latency after, seconds")
    parser.add_argument("--steady-seconds", type=float, default=32.0)
    parser.add_argument("--step-spread", type=float, default=3.0)
    parser.add_argument("--hold-seconds", type=float, default=4.0)
    parser.add_argument("--metrics-port", type=int, help="serve /metrics/<pod> on this port")
    parser.add_argument("--samples-out", help="write every observation to this .npy file")
    args = parser.parse_args()
    if not args.url.startswith("https://127.0.0.1:"):
        parser.error("the pods push to https://127.0.0.1 only")
    if not 1 <= args.pods <= 100 or args.steady_seconds + args.step_spread > 300:
        parser.error("--pods in [1, 100], and at most 300 s to the last step")
    for line in asyncio.run(main_async(args)):
        print(json.dumps(line))


if __name__ == "__main__":
    main()
