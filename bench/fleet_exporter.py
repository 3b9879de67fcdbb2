"""An exporter serving many pods' model-server series at once, to fill Prometheus for the
query-scale benchmark (``bench.prometheus``). 127.0.0.1 only.

Run: ``python -m bench.fleet_exporter --port P --deployment q1k=1000 --deployment q10k=10000``.

Each pod has what ``model_server/metrics.py`` exports: the ``inference_request_duration_seconds``
histogram with the model server's buckets, and the two queue gauges, labelled ``namespace``
(the deployment's name), ``pod``, ``deployment`` and ``app`` (Prometheus scrapes it with
``honor_labels``). A pod completes ``--rate`` requests per second whose latencies are lognormal
around a median of its own (20 to 60 ms), so rates and quantiles are real numbers; the counts
grow with the time since start, as a real server's do.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from aiohttp import web

from model_server.metrics import LATENCY_BUCKETS

HISTOGRAM = "inference_request_duration_seconds"
SIGMA = 0.4


class Fleet:
    """The exposition of every pod, rendered from per-pod label strings and bucket shares."""

    def __init__(self, deployments: dict[str, int], rate: float) -> None:
        self.rate = rate
        self.started = time.time()
        bounds = [*LATENCY_BUCKETS, math.inf]
        prefixes, shares, labels = [], [], []
        for deployment, count in deployments.items():
            for index in range(count):
                pod = f"{deployment}-{index:05d}"
                label = (
                    f'namespace="{deployment}",pod="{pod}",deployment="{deployment}",'
                    f'app="{deployment}"'
                )
                median = 0.02 + 0.04 * index / max(1, count - 1)
                labels.append(label)
                for bound in bounds:
                    le = "+Inf" if bound == math.inf else repr(bound)
                    prefixes.append(f'{HISTOGRAM}_bucket{{{label},le="{le}"}} ')
                    shares.append(_lognormal_cdf(bound, median))
        self.bucket_prefixes = prefixes
        self.bucket_shares = np.array(shares)
        self.labels = labels

    def render(self) -> bytes:
        completed = self.rate * (time.time() - self.started)
        buckets = np.floor(self.bucket_shares * completed).astype(np.int64).astype(str)
        lines = [
            f"# TYPE {HISTOGRAM} histogram",
            *(p + v for p, v in zip(self.bucket_prefixes, buckets.tolist(), strict=True)),
        ]
        total = str(math.floor(completed))
        lines += [f"{HISTOGRAM}_count{{{label}}} {total}" for label in self.labels]
        lines += [f"{HISTOGRAM}_sum{{{label}}} {completed * 0.04:.3f}" for label in self.labels]
        for gauge in ("inference_queue_depth", "inference_concurrency"):
            lines.append(f"# TYPE {gauge} gauge")
            lines += [f"{gauge}{{{label}}} 1" for label in self.labels]
        return ("\n".join(lines) + "\n").encode()


def _lognormal_cdf(bound: float, median: float) -> float:
    if bound == math.inf:
        return 1.0
    return 0.5 * (1 + math.erf(math.log(bound / median) / (SIGMA * math.sqrt(2))))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet_exporter")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--deployment", action="append", required=True, help="NAME=PODS")
    parser.add_argument("--rate", type=float, default=10.0, help="requests/s per pod")
    args = parser.parse_args()
    deployments = {}
    for spec in args.deployment:
        name, _, count = spec.partition("=")
        deployments[name] = int(count)
    if not 1 <= sum(deployments.values()) <= 20_000:
        parser.error("between 1 and 20,000 pods in all")
    fleet = Fleet(deployments, args.rate)

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=fleet.render(), content_type="text/plain")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
