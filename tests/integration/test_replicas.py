"""Two adapter replicas that share nothing serve the same numbers: every pod pushes to both.

Two real ``inference-adapter serve`` processes listen on 127.0.0.1 and 127.0.0.2 with one port,
one serving certificate and one push token, as two adapter pods do. Four real ``model-server``
processes push to ``https://inference-metrics-adapter-push.metrics.svc:PORT`` with ``--resolve``
mapping that name to both addresses: what the headless Service's DNS records say in a cluster,
injected because this machine has no such records. From there on the path is a cluster's: the
pushers deliver to each address and verify TLS against the name. Queries go to each replica's
address and verify the query Service's name, as the aggregator does.

Short times stand in for the defaults (push interval 0.5 s, window 4 s, max age 2 s, warm-up four
intervals rather than two, so that the test's first question to a restarted replica comes within its
warm-up even on a loaded machine), so a few seconds of load show what 30 s would at the default
interval and window.
The pods carry different loads (pod i keeps i + 1 requests in flight on its one worker slot,
100 ms each), so a replica missing any pod answers another queue-depth sum and pooled p99.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import math
import re
import signal
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from kubernetes.utils import parse_quantity

from adapter import certs
from adapter.config import DEFAULT_SERVICE_NAME, DEFAULT_SERVICE_NAMESPACE
from adapter.transport import ensure_token_file
from tests.conftest import free_port
from tests.integration.conftest import (
    ModelServerProcess,
    spawn_adapter,
    start_model_pods,
    wait_until_ready,
)

pytestmark = pytest.mark.integration

REPLICAS = ("127.0.0.1", "127.0.0.2")
PUSH_NAME = f"{certs.push_service_name(DEFAULT_SERVICE_NAME)}.{DEFAULT_SERVICE_NAMESPACE}.svc"
QUERY_NAME = f"{DEFAULT_SERVICE_NAME}.{DEFAULT_SERVICE_NAMESPACE}.svc"
NAMESPACE = "ha"
PODS = tuple(f"model-7d4b9c-{i:05d}" for i in range(4))
PUSH_INTERVAL = 0.5
WINDOW = 4
MAX_AGE = 2.0
WARM_UP = 4 * PUSH_INTERVAL
SERVICE_SECONDS = 0.1
ADAPTER_FLAGS = (
    f"--window={WINDOW}s",
    f"--max-age={MAX_AGE:g}s",
    f"--warm-up={WARM_UP:g}s",
)
BASE = f"/apis/custom.metrics.k8s.io/v1beta2/namespaces/{NAMESPACE}"
DEPTH_PATH = f"{BASE}/deployments.apps/model/inference_queue_depth"
P99_PATH = f"{BASE}/deployments.apps/model/inference_latency_p99_seconds"
PODS_PATH = f"{BASE}/pods/*/inference_queue_depth?labelSelector=app%3Dmodel"

DEPTH_TOLERANCE = 0.5
"""The largest difference of the Deployment's queue-depth sum between the replicas: each pod's
pushed value is its mean over one push interval, and at a given moment one replica may hold a
pod's newest report and the other its previous one. Pods missing from a replica move the sum by
whole requests (pod i waits i)."""
P99_TOLERANCE = 0.10
"""The largest relative difference of the pooled p99: one replica may hold one push per pod
more than the other, an eighth of a 4 s window; pods missing move it by 100 ms in ~400 ms."""


@dataclass(frozen=True)
class Snapshot:
    """What one replica answers about the Deployment and its pods."""

    depth: float
    p99: float
    window: int
    pods: frozenset[str]


class Replicas:
    """HTTPS to each replica's address, verified against the query Service's name, with the
    client certificate of a metrics reader."""

    def __init__(self, session: aiohttp.ClientSession, port: int) -> None:
        self.session = session
        self.port = port

    async def get(self, address: str, path: str) -> tuple[int, dict | str]:
        async with self.session.get(
            f"https://{address}:{self.port}{path}", server_hostname=QUERY_NAME
        ) as response:
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, await response.text()

    async def snapshot(self, address: str) -> Snapshot:
        answers = await asyncio.gather(
            self.get(address, DEPTH_PATH), self.get(address, P99_PATH), self.get(address, PODS_PATH)
        )
        for status, body in answers:
            assert status == 200, body
        depth, p99, pods = (body for _, body in answers)
        assert isinstance(depth, dict) and isinstance(p99, dict) and isinstance(pods, dict)
        (depth_item,), (p99_item,) = depth["items"], p99["items"]
        return Snapshot(
            float(parse_quantity(depth_item["value"])),
            float(parse_quantity(p99_item["value"])),
            p99_item["windowSeconds"],
            frozenset(item["describedObject"]["name"] for item in pods["items"]),
        )

    async def both(self) -> tuple[Snapshot, Snapshot]:
        first, second = await asyncio.gather(*(self.snapshot(a) for a in REPLICAS))
        return first, second


def assert_agree(first: Snapshot, second: Snapshot, p99_too: bool = True) -> None:
    assert first.pods == second.pods == set(PODS), (first, second)
    assert abs(first.depth - second.depth) <= DEPTH_TOLERANCE, (first, second)
    if p99_too:
        assert math.isclose(first.p99, second.p99, rel_tol=P99_TOLERANCE), (first, second)


@dataclass
class Cluster:
    """The replicas' processes and the files they share."""

    cert_dir: Path
    port: int
    logs: Path
    processes: dict[str, subprocess.Popen]

    def start(self, address: str) -> None:
        self.processes[address] = spawn_adapter(
            self.cert_dir, self.port, self.logs / f"adapter-{address}.log", ADAPTER_FLAGS, address
        )


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """Both replicas, started from one certificate directory made beforehand (so neither
    writes it while the other reads)."""
    cert_dir = tmp_path / "certs"
    now = datetime.datetime.now(datetime.UTC)
    certs.ensure_serving_files(
        cert_dir, certs.serving_hostnames(DEFAULT_SERVICE_NAME, DEFAULT_SERVICE_NAMESPACE), now
    )
    ensure_token_file(cert_dir / "push-token")
    certs.write_client_files(cert_dir, tmp_path, "alice", ["metrics-readers"], now)
    cluster = Cluster(cert_dir, free_port(), tmp_path, {})
    try:
        with ThreadPoolExecutor(len(REPLICAS)) as pool:
            for started in [pool.submit(cluster.start, a) for a in REPLICAS]:
                started.result()
        yield cluster
    finally:
        for process in cluster.processes.values():
            process.kill()
            process.wait()


@contextlib.contextmanager
def model_servers(tmp_path: Path, cluster: Cluster) -> Iterator[list[ModelServerProcess]]:
    """Four pods of Deployment ``model`` pushing to every replica through the push name."""
    pods = start_model_pods(
        tmp_path,
        NAMESPACE,
        PODS,
        "--max-concurrency=1",
        f"--service-time=constant:{SERVICE_SECONDS * 1000:g}ms",
        f"--adapter-url=https://{PUSH_NAME}:{cluster.port}",
        f"--resolve={PUSH_NAME}:{','.join(REPLICAS)}",
        f"--adapter-ca-file={cluster.cert_dir / 'ca.crt'}",
        f"--push-token-file={cluster.cert_dir / 'push-token'}",
        f"--push-interval={PUSH_INTERVAL:g}s",
        f"--push-backlog-max-age={MAX_AGE:g}s",
    )
    try:
        for pod in pods.values():
            wait_until_ready(pod)
        yield list(pods.values())
    finally:
        for pod in pods.values():
            pod.process.kill()
            pod.process.wait()


@contextlib.asynccontextmanager
async def load(servers: list[ModelServerProcess]) -> AsyncIterator[list[int]]:
    """Closed-loop load: pod i keeps i + 1 requests in flight. Yields the count of failures."""
    failures = [0]
    body = {"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": [0.5] * 64}]}

    async def one_in_flight(session: aiohttp.ClientSession, url: str) -> None:
        while True:
            async with session.post(f"{url}/v2/models/m/infer", json=body) as response:
                await response.read()
                failures[0] += response.status != 200

    async with aiohttp.ClientSession() as session:
        tasks = [
            asyncio.ensure_future(one_in_flight(session, server.url))
            for index, server in enumerate(servers)
            for _ in range(index + 1)
        ]
        try:
            yield failures
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


@dataclass(frozen=True)
class PushCounts:
    """From a pod's ``/metrics``: requests served, and what its pushers hold or dropped."""

    served: float
    backlog: dict[str, float]
    """Requests not yet acknowledged, by replica address."""
    dropped: float


async def push_counts(session: aiohttp.ClientSession, server: ModelServerProcess) -> PushCounts:
    async with session.get(f"{server.url}/metrics") as response:
        text = await response.text()
    samples = dict(
        line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    backlog = {
        name.split('address="')[1].split('"')[0]: float(value)
        for name, value in samples.items()
        if name.startswith("model_server_push_backlog_requests{")
    }
    return PushCounts(
        float(samples['inference_requests_total{outcome="ok"}']),
        backlog,
        float(samples["model_server_push_dropped_requests_total"]),
    )


async def poll_until(condition: Callable[[], Awaitable[bool]], within: float, what: str) -> float:
    """Seconds until the async ``condition()`` holds; fails naming ``what`` after ``within``."""
    started = time.monotonic()
    while not await condition():
        assert time.monotonic() - started < within, f"not within {within:g}s: {what}"
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def test_two_replicas_serve_the_same_numbers_through_kill_and_restart(
    tmp_path: Path, cluster: Cluster
) -> None:
    context = ssl.create_default_context(cafile=str(cluster.cert_dir / "ca.crt"))
    context.load_cert_chain(str(tmp_path / "alice.crt"), str(tmp_path / "alice.key"))
    connector = aiohttp.TCPConnector(ssl=context)
    timeout = aiohttp.ClientTimeout(total=10)
    first, second = REPLICAS
    with model_servers(tmp_path, cluster) as servers:
        async with (
            aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
            aiohttp.ClientSession(timeout=timeout) as plain,
            load(servers) as failures,
        ):
            replicas = Replicas(session, cluster.port)

            async def full_windows() -> bool:
                for address in REPLICAS:
                    status, body = await replicas.get(address, PODS_PATH)
                    if status != 200 or len(body["items"]) < len(PODS):  # type: ignore[index]
                        return False
                return all(s.window == WINDOW for s in await replicas.both())

            # Under load, with both windows full: the same pods, sum and pooled p99.
            await poll_until(full_windows, 30, "both replicas serving every pod, windows full")
            compared = []
            loaded = time.monotonic()
            while time.monotonic() - loaded < WINDOW:  # a window of load: 30 s at the defaults
                compared.append(await replicas.both())
                assert_agree(*compared[-1])
                await asyncio.sleep(PUSH_INTERVAL)
            print("under load:", compared)

            # Kill -9 the second: the first answers every query, and the pushers' backlog for
            # the dead one stays within the max age (the rest is dropped, not kept).
            cluster.processes[second].send_signal(signal.SIGKILL)
            killed = time.monotonic()
            cluster.processes[second].wait()
            history: list[tuple[float, list[PushCounts]]] = []
            answered = 0
            while time.monotonic() - killed < MAX_AGE + 4 * PUSH_INTERVAL:
                status, body = await replicas.get(first, PODS_PATH)
                assert status == 200, body
                assert isinstance(body, dict)
                assert {i["describedObject"]["name"] for i in body["items"]} == set(PODS)
                answered += 1
                if not history or time.monotonic() - history[-1][0] >= PUSH_INTERVAL / 2:
                    samples = await asyncio.gather(*(push_counts(plain, s) for s in servers))
                    history.append((time.monotonic(), samples))
                await asyncio.sleep(0.05)
            print(f"answered {answered} queries while the second replica was dead")
            end, last = history[-1]
            # What a pod served within the last max age (plus two intervals of delivery) bounds
            # its backlog for the dead replica; without the bound it would hold the whole outage.
            recent = min(history, key=lambda h: abs(h[0] - (end - MAX_AGE - 2 * PUSH_INTERVAL)))
            start = history[0][1]
            for now, before, then in zip(last, recent[1], start, strict=True):
                assert now.backlog[second] <= now.served - before.served, (now, before)
                assert now.backlog[second] < now.served - then.served, (now, then)
                assert now.dropped > 0, now
                assert now.backlog[first] <= now.served - before.served, now

            # Restart it: not ready at first, ready after the warm-up, then the same answers,
            # with the window it has seen until that is the whole window.
            restarting = time.monotonic()
            await asyncio.to_thread(cluster.start, second)
            restarted = time.monotonic()
            print(f"the restarted replica answered after {restarted - restarting:.2f}s")
            asked = time.monotonic()
            status, text = await replicas.get(second, "/readyz")
            assert status == 503, text
            warming = re.match(r"warming up: ([0-9.]+)s of the", str(text))
            assert warming, text

            async def ready() -> bool:
                return (await replicas.get(second, "/readyz"))[0] == 200

            await poll_until(ready, 10, "the restarted replica ready")
            # Not before the rest of its warm-up had passed (the message rounds to 0.1 s).
            assert time.monotonic() - asked >= float(warming[1]) - 0.05
            young = await replicas.snapshot(second)
            assert 1 <= young.window < WINDOW, young

            async def same_pods() -> bool:
                one, two = await replicas.both()
                return one.pods == two.pods == set(PODS)

            gap = await poll_until(same_pods, 10, "the restarted replica serving every pod")
            print(f"after ready, {gap:.2f}s until the restarted replica served every pod")
            assert_agree(*await replicas.both(), p99_too=False)

            async def full_window() -> bool:
                return (await replicas.snapshot(second)).window == WINDOW

            await poll_until(full_window, 2 * WINDOW, "the restarted replica's window full")
            for _ in range(3):
                assert_agree(*await replicas.both())
                await asyncio.sleep(PUSH_INTERVAL)
            assert failures[0] == 0
