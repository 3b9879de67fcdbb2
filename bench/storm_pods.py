"""Many pods pushing on their own schedules, run as its own process: ``python -m bench.storm_pods``.

Open loop, as real pods push: each of ``--pods`` pods has its own keep-alive TLS connection and
reports every ``1 / --rate`` seconds (its first report at a random phase), whatever the adapter
answers. Each report carries the requests the pod completed since its last delivered report
(``--requests`` per interval, all in one latency bin), as ``adapter.client`` does: a report that
was refused (429) or could not be sent (the previous one still awaits its answer) stays pending
and is merged into the next one, so nothing is lost, only delayed. With ``--honour-retry-after``
a pod refused with 429 and ``Retry-After`` waits that long before it pushes again (as
``adapter.client`` does); without it, it pushes again at its next interval.

A cheap client on purpose: HTTP/1.1 written and parsed by hand over asyncio TLS transports on
uvloop, so that one process on one core can offer several times what the adapter takes.

Phases: connect every pod and deliver one report each (not measured); ``--seconds`` of load;
then a drain: every pod delivers what it still holds (honouring ``Retry-After``), bounded in
time. Prints one JSON object: answers by status and phase, sheds without ``Retry-After``,
transport errors, requests delivered per pod with the time of its first acknowledged report,
pending left, and its own CPU time.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import random
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapter import eventloop
from bench import workload

DRAIN_SECONDS = 60.0


@dataclass
class Pod:
    """One pod: its connection, what it has completed and not yet delivered, its answers."""

    index: int
    name: str
    seq: int = 0
    pending: int = 0
    sending: int = 0
    """Requests in the report awaiting its answer (0: none in flight)."""
    delivered: int = 0
    first_ack: float | None = None
    retry_at: float = 0.0
    protocol: PushProtocol | None = None
    answered: asyncio.Future[int] | None = None
    """The status of the report in flight, once it comes (0: the connection was lost)."""
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)


class PushProtocol(asyncio.Protocol):
    """One pod's connection: sends a request, parses the answer's status, Retry-After and body."""

    def __init__(self, storm: Storm, pod: Pod) -> None:
        self.storm = storm
        self.pod = pod
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.pod.sending:
            self.storm.errors["connection lost with a report in flight"] += 1
            self.storm.finish(self.pod, 0, None)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head = self.buffer[:head_end].decode("latin-1")
        lines = head.split("\r\n")
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])
        }
        length = int(headers.get("content-length", "0"))
        if len(self.buffer) < head_end + 4 + length:
            return
        self.buffer = self.buffer[head_end + 4 + length :]
        self.storm.finish(self.pod, int(lines[0].split()[1]), headers.get("retry-after"))


class Storm:
    """The pods, their connections and the schedule."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.host, port = args.url.removeprefix("https://").split(":")
        self.port = int(port)
        self.context = ssl.create_default_context(cafile=str(args.ca_file))
        token = args.token_file.read_text().strip()
        self.pods = [
            Pod(i, pod.name) for i, pod in enumerate(workload.identities(args.pods, args.namespace))
        ]
        identities = workload.identities(args.pods, args.namespace)
        self.heads = []
        for identity in identities:
            pod = json.dumps(identity.as_wire(), separators=(",", ":"))
            self.heads.append(f'{{"pod":{pod},"seq":'.encode())
        self.request_head = (
            f"POST /push/v1 HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {token}\r\nContent-Length: "
        ).encode()
        self.phase = "connect"
        self.statuses: dict[str, collections.Counter[int]] = collections.defaultdict(
            collections.Counter
        )
        self.without_retry_after = 0
        self.errors: collections.Counter[str] = collections.Counter()

    def body(self, pod: Pod, requests: int) -> bytes:
        latency = f'{{"relative_accuracy":0.01,"zero_count":0,"bins":{{"-150":{requests}}}}}'
        if not requests:
            latency = '{"relative_accuracy":0.01,"zero_count":0,"bins":{}}'
        return (
            self.heads[pod.index]
            + f'{pod.seq},"gauges":{{"inference_queue_depth":{pod.index % 7},'
            f'"inference_concurrency":8}},"latency":{latency}}}'.encode()
        )

    async def connect(self, pod: Pod) -> None:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(
            lambda: PushProtocol(self, pod),
            self.host,
            self.port,
            ssl=self.context,
            server_hostname=self.host,
        )
        pod.protocol = protocol

    def send(self, pod: Pod) -> bool:
        """Push what the pod holds, unless a report is in flight or it was told to wait."""
        protocol = pod.protocol
        if pod.sending or protocol is None or protocol.lost:
            return False
        waits = self.args.honour_retry_after or self.phase == "drain"
        if waits and time.monotonic() < pod.retry_at:
            return False
        pod.seq += 1
        pod.answered = asyncio.get_running_loop().create_future()
        pod.sending = max(pod.pending, 0) or -1  # -1: a report without requests
        body = self.body(pod, max(pod.pending, 0))
        assert protocol.transport is not None
        protocol.transport.write(self.request_head + str(len(body)).encode() + b"\r\n\r\n" + body)
        return True

    def finish(self, pod: Pod, status: int, retry_after: str | None) -> None:
        """The answer to the report in flight (status 0: none came)."""
        sent, pod.sending = pod.sending, 0
        self.statuses[self.phase][status] += 1
        pod.statuses[status] += 1
        if status == 200:
            if sent > 0:
                pod.pending -= sent
                pod.delivered += sent
            if pod.first_ack is None:
                pod.first_ack = time.time()
        elif status in (429, 503):
            if retry_after is None:
                self.without_retry_after += 1
            else:
                pod.retry_at = time.monotonic() + float(retry_after)
        elif status:
            self.errors[f"status {status}"] += 1
        if pod.answered is not None and not pod.answered.done():
            pod.answered.set_result(status)

    async def deliver_once(self, pod: Pod) -> None:
        """Until one report of this pod is acknowledged (the set-up and the drain)."""
        deadline = time.monotonic() + DRAIN_SECONDS
        while time.monotonic() < deadline:
            if pod.sending and pod.answered is not None:
                await pod.answered
            wait = pod.retry_at - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not self.send(pod):
                if pod.protocol is None or pod.protocol.lost:
                    await self.connect(pod)
                continue
            assert pod.answered is not None
            if await pod.answered == 200:
                return
        self.errors["not delivered within the drain"] += 1

    async def run(self) -> dict[str, Any]:
        args = self.args
        for start in range(0, len(self.pods), 100):  # handshakes in batches
            await asyncio.gather(*(self.connect(p) for p in self.pods[start : start + 100]))
        await asyncio.gather(*(self.deliver_once(p) for p in self.pods))
        if args.ready_file is not None:
            args.ready_file.write_text("ready\n")  # every pod has reported once
        self.phase = "load"
        cpu_started, started = time.process_time(), time.monotonic()
        interval = 1.0 / args.rate
        loop = asyncio.get_running_loop()
        end = started + args.seconds
        rng = random.Random(7)

        def tick(pod: Pod) -> None:
            now = time.monotonic()
            if now >= end:
                return
            pod.pending += args.requests
            self.send(pod)
            loop.call_at(loop.time() + interval, tick, pod)

        for pod in self.pods:
            loop.call_at(loop.time() + rng.uniform(0, interval), tick, pod)
        await asyncio.sleep(args.seconds)
        load_cpu = time.process_time() - cpu_started
        # the last answers of the load phase
        await asyncio.gather(*(p.answered for p in self.pods if p.sending and p.answered))
        self.phase = "drain"
        await asyncio.gather(*(self.deliver_once(p) for p in self.pods if p.pending > 0))
        return {
            "pods": len(self.pods),
            "offered_per_second": args.rate * len(self.pods),
            "seconds": args.seconds,
            "statuses": {phase: dict(c) for phase, c in self.statuses.items()},
            "sheds_without_retry_after": self.without_retry_after,
            "errors": dict(self.errors),
            "delivered": [p.delivered for p in self.pods],
            "first_ack": [p.first_ack for p in self.pods],
            "pending": sum(max(p.pending, 0) for p in self.pods),
            "client_cpu_utilisation": load_cpu / args.seconds,
        }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.storm_pods")
    parser.add_argument("--url", required=True, help="https://127.0.0.1:PORT")
    parser.add_argument("--ca-file", type=Path, required=True)
    parser.add_argument("--token-file", type=Path, required=True)
    parser.add_argument("--namespace", default="storm")
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--rate", type=float, required=True, help="reports a second per pod")
    parser.add_argument(
        "--requests", type=int, default=20, help="requests a pod completes per interval"
    )
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--honour-retry-after", action="store_true")
    parser.add_argument("--ready-file", type=Path, help="written once every pod reported once")
    parser.add_argument("--cpu", type=int, action="append")
    args = parser.parse_args()
    if not args.url.startswith("https://127.0.0.1:"):
        parser.error("the storm targets 127.0.0.1 only")
    if not 0 < args.seconds <= 600 or args.pods < 1 or args.rate <= 0:
        parser.error("--seconds in (0, 600], --pods >= 1 and --rate > 0")
    if args.cpu:
        import os

        os.sched_setaffinity(0, set(args.cpu))
    print(json.dumps(eventloop.run(Storm(args).run(), eventloop.default())))


if __name__ == "__main__":
    main()
