"""Closed-loop infer load, run as its own process: ``python -m bench.infer_load ...``.

``--concurrency`` workers share an aiohttp client with that many keep-alive connections (plain
HTTP); each posts ``--body-file`` to ``--url`` and sends the next request as soon as the answer
is read, so the server is offered as much work as it can take (a throughput ceiling, unlike the
open-loop ``model_server loadgen``). It runs ``--warmup`` seconds unmeasured, then ``--duration``
seconds measured, and prints one JSON object: requests, statuses, answers that differ from
``--expect-file``, transport errors, latency percentiles, its own CPU time and the server's
(``--server-pid``, from /proc) over the measured span. The loop itself is ``bench.closed_loop``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench import closed_loop


class FixedBodySource:
    """The same body every time, to ``--url`` over plain HTTP."""

    headers = {"Content-Type": "application/json"}
    ssl = True  # aiohttp's default; the URL is http:// so it never applies

    def __init__(self, args: argparse.Namespace) -> None:
        self.url = args.url
        self.body = args.body_file.read_bytes()
        self.expect = args.expect_file.read_bytes() if args.expect_file else None

    def next_body(self) -> bytes:
        return self.body

    def report(self) -> dict[str, Any]:
        return {}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.infer_load")
    parser.add_argument("--url", required=True, help="http://127.0.0.1:PORT/v2/models/NAME/infer")
    parser.add_argument("--body-file", type=Path, required=True)
    parser.add_argument("--expect-file", type=Path, help="the exact answer every request must get")
    closed_loop.add_run_arguments(parser)
    args = closed_loop.parse_args(parser, "http://127.0.0.1:")
    if not 1 <= args.concurrency <= 1024:
        parser.error("--concurrency must be in [1, 1024]")
    closed_loop.execute(args, FixedBodySource)


if __name__ == "__main__":
    main()
