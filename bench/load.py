"""The push load generator, run as its own process: ``python -m bench.load ...``.

An aiohttp client with keep-alive and ``--concurrency`` connections (over TLS, trusting
``--ca-file``, with the bearer token of ``--token-file``) posts reports of ``--pods`` pods
round-robin, each with a ``seq`` one above that pod's previous one (starting at ``--seq-start``),
so every push is new to the adapter. It runs ``--warmup`` seconds unmeasured, then ``--duration``
seconds measured, and prints one JSON object: requests, statuses, answers that were not the
expected one, transport errors, latency percentiles, its own CPU time and the server's
(``--server-pid``) over the measured span, and the next unused ``seq``. The loop itself is
``bench.closed_loop``.
"""

from __future__ import annotations

import argparse
import ssl
import time
from typing import Any

import numpy as np

from bench import closed_loop, workload


class PushSource:
    """Per-pod push bodies with increasing ``seq``, to ``URL/push/v1`` with a bearer token."""

    def __init__(self, args: argparse.Namespace) -> None:
        rng = np.random.default_rng(7)
        pods = workload.pod_loads(args.pods, args.namespace)
        now = time.time()
        self.templates = [workload.body_template(rng, pod, now) for pod in pods]
        self.seqs = [args.seq_start] * len(pods)
        self.next_pod = 0
        self.expect = args.expect.encode() if args.expect else None
        self.headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {args.token_file.read_text().strip()}",
        }
        self.url = f"{args.url}/push/v1"
        self.ssl = ssl.create_default_context(cafile=str(args.ca_file))

    def next_body(self) -> bytes:
        pod = self.next_pod
        self.next_pod = (pod + 1) % len(self.templates)
        self.seqs[pod] += 1
        head, tail = self.templates[pod]
        return head + str(self.seqs[pod]).encode() + tail

    def report(self) -> dict[str, Any]:
        return {"next_seq": max(self.seqs) + 1}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.load")
    closed_loop.add_adapter_arguments(parser)
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--namespace", default="bench-push")
    parser.add_argument("--seq-start", type=int, default=0)
    parser.add_argument("--expect", help="the exact answer body every push must get")
    closed_loop.add_run_arguments(parser)
    args = closed_loop.parse_args(parser, "https://127.0.0.1:")
    closed_loop.execute(args, PushSource)


if __name__ == "__main__":
    main()
