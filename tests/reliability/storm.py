"""A push storm, run as its own process: ``python -m tests.reliability.storm URL CA TOKEN``.

Every one of ``--pods`` distinct pods pushes one valid report, the pushes started evenly over
``--spread`` seconds, all concurrent, over at most ``--connections`` connections at once (each
opened with a full TLS handshake; 0: one per pod, what an adapter meets when a whole fleet
reconnects at once). Prints one JSON object: the answers by status, the sheds that lacked
``Retry-After``, failed connections by error, the accepted pods, and the timings.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from adapter.client import PodIdentity, client_ssl_context, encode_report
from adapter.sketch import LatencySketch


def pod_name(index: int) -> str:
    return f"storm-{index:04d}"


def queue_depth(index: int) -> int:
    """The gauge pod ``index`` reports, so the test can check what the adapter serves."""
    return index % 7


def bodies(namespace: str, pods: int) -> list[bytes]:
    """One report per pod (the same ~50-bucket latency sketch), encoded before the clock starts."""
    values = np.random.default_rng(0).lognormal(np.log(0.05), 0.6, size=200)
    latency = LatencySketch.from_values(values)
    encoded = []
    for index in range(pods):
        identity = PodIdentity(
            namespace, pod_name(index), f"uid-{index}", {"app": "storm"}, deployment="storm"
        )
        gauges = {"inference_queue_depth": queue_depth(index), "inference_concurrency": 1}
        report = encode_report(identity, 1, gauges, latency, time.time())
        encoded.append(json.dumps(report).encode())
    return encoded


async def storm(
    url: str, ca_file: Path, token: str, reports: list[bytes], spread: float, connections: int
) -> dict:
    statuses: collections.Counter[int] = collections.Counter()
    errors: collections.Counter[str] = collections.Counter()
    accepted: list[int] = []
    without_retry_after = 0
    launched: list[float] = []
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(
        ssl=client_ssl_context(ca_file), limit=connections, force_close=connections == 0
    )
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.monotonic()

        async def push(index: int) -> None:
            nonlocal without_retry_after
            await asyncio.sleep(spread * index / len(reports))
            launched.append(time.monotonic() - started)
            try:
                async with session.post(
                    f"{url}/push/v1", data=reports[index], headers=headers
                ) as response:
                    await response.read()
            except (aiohttp.ClientError, OSError, TimeoutError) as error:
                errors[type(error).__name__] += 1
                return
            statuses[response.status] += 1
            if response.status == 200:
                accepted.append(index)
            elif response.status in (429, 503) and "Retry-After" not in response.headers:
                without_retry_after += 1

        await asyncio.gather(*(push(index) for index in range(len(reports))))
        finished = time.monotonic() - started
    result: dict[str, Any] = {
        "statuses": {str(status): count for status, count in sorted(statuses.items())},
        "shed_without_retry_after": without_retry_after,
        "errors": dict(errors),
        "accepted": sorted(accepted),
        "last_launched_seconds": max(launched),
        "finished_seconds": finished,
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("ca_file", type=Path)
    parser.add_argument("token_file", type=Path)
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--spread", type=float, default=1.0, help="seconds to start them over")
    parser.add_argument("--connections", type=int, default=0, help="at most this many at once")
    parser.add_argument("--namespace", default="storm")
    args = parser.parse_args()
    reports = bodies(args.namespace, args.pods)
    token = args.token_file.read_text().strip()
    print(
        json.dumps(
            asyncio.run(
                storm(args.url, args.ca_file, token, reports, args.spread, args.connections)
            )
        )
    )


if __name__ == "__main__":
    main()
