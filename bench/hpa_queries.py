"""HPAs querying the adapter, run as its own process: ``python -m bench.hpa_queries``.

``--hpas`` clients, each on its own keep-alive connection with a client certificate (as the
aggregator's front proxy holds one), each asking its ``--path``s in turn every ``--interval``
seconds (first at a random phase), for ``--seconds``. Every answer is timed to its last byte.
Prints one JSON object: per path, the wall seconds of each answer and the statuses.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import random
import ssl
import time
from pathlib import Path
from typing import Any

import aiohttp

from adapter import eventloop


async def hpa(
    session: aiohttp.ClientSession,
    url: str,
    paths: list[str],
    interval: float,
    end: float,
    seed: int,
    found: dict[str, Any],
) -> None:
    rng = random.Random(seed)
    await asyncio.sleep(rng.uniform(0, interval))
    turn = 0
    while time.monotonic() < end:
        due = time.monotonic() + interval
        path = paths[turn % len(paths)]
        turn += 1
        started = time.perf_counter()
        try:
            async with session.get(url + path) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as error:
            found["errors"][type(error).__name__] += 1
            continue
        found["seconds"][path].append(time.perf_counter() - started)
        found["statuses"][path][status] += 1
        await asyncio.sleep(max(0.0, due - time.monotonic()))


async def run(args: argparse.Namespace) -> dict[str, Any]:
    context = ssl.create_default_context(cafile=str(args.ca_file))
    context.load_cert_chain(str(args.client_cert), str(args.client_key))
    found: dict[str, Any] = {
        "seconds": collections.defaultdict(list),
        "statuses": collections.defaultdict(collections.Counter),
        "errors": collections.Counter(),
    }
    sessions = [
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context, limit=1),
            timeout=aiohttp.ClientTimeout(total=30),
        )
        for _ in range(args.hpas)
    ]
    end = time.monotonic() + args.seconds
    try:
        await asyncio.gather(
            *(
                hpa(session, args.url, args.path, args.interval, end, seed, found)
                for seed, session in enumerate(sessions)
            )
        )
    finally:
        for session in sessions:
            await session.close()
    return {
        "seconds": dict(found["seconds"]),
        "statuses": {path: dict(c) for path, c in found["statuses"].items()},
        "errors": dict(found["errors"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hpa_queries")
    parser.add_argument("--url", required=True, help="https://127.0.0.1:PORT")
    parser.add_argument("--ca-file", type=Path, required=True)
    parser.add_argument("--client-cert", type=Path, required=True)
    parser.add_argument("--client-key", type=Path, required=True)
    parser.add_argument("--path", action="append", required=True, help="repeatable")
    parser.add_argument("--hpas", type=int, default=10)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--cpu", type=int, action="append")
    args = parser.parse_args()
    if not args.url.startswith("https://127.0.0.1:"):
        parser.error("queries target 127.0.0.1 only")
    if not 0 < args.seconds <= 600:
        parser.error("--seconds must be in (0, 600]")
    if args.cpu:
        import os

        os.sched_setaffinity(0, set(args.cpu))
    print(json.dumps(eventloop.run(run(args), eventloop.default())))


if __name__ == "__main__":
    main()
