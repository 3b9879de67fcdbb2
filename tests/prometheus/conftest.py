"""One real fleet for the Prometheus tests, shared by the session.

Three model-server processes push to a push-mode adapter and are scraped every second by a
real Prometheus (Debian's package, installed by ``localcluster.prometheus`` when missing) with
``namespace``, ``pod``, ``deployment`` and ``app`` target labels; a Prometheus-mode adapter
reads the same pods through it. ``p0`` and ``p1`` (Deployment ``model``, ``app=model``) take
the steady load; ``slow-0`` (Deployment ``slow``) serves one request at a time, slowly, so its
queue gauges hold still long enough to compare.

Namespace ``lagging`` is a ``LaggingExporter`` in the test process: Deployment ``lagging``'s pod
``lag-0`` is exported with samples stamped ``LAG_SECONDS`` in the past (as federation or a
remote-write delay deliver them: no staleness marker ever removes such series) and ``lag-1``
as scraped; the max age must leave ``lag-0`` out of everything.
"""

from __future__ import annotations

import http.server
import json
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes.utils import parse_quantity

from localcluster import processes
from localcluster import prometheus as prometheus_server
from localcluster.ports import free_port
from tests.integration.conftest import (
    AdapterProcess,
    ModelServerProcess,
    start_adapter,
    start_model_server,
    stop,
    stop_process,
    wait_until_ready,
)

NAMESPACE = "ml"
WINDOW_SECONDS = 10
"""Both adapters' ``--window``: the rate and latency windows compared."""
LOAD_RPS = 200
TIMEOUT_SECONDS = 2
PODS = {
    "p0": ("model", "lognormal:5ms,0.4"),
    "p1": ("model", "lognormal:10ms,0.4"),
    "slow-0": ("slow", "constant:1500ms"),
}


LAGGING = "lagging"
"""The namespace and Deployment of the ``LaggingExporter``'s pods."""
LAG_SECONDS = 40.0
LAGGING_PODS = {"lag-0": 7, "lag-1": 2}
"""Pod -> its constant queue depth."""


class LaggingExporter:
    """Two pods' queue gauges on one scrape target, served from this process: ``lag-0``'s
    samples carry a timestamp ``LAG_SECONDS`` old, ``lag-1``'s none (stamped at the scrape)."""

    def __init__(self) -> None:
        exporter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = exporter.exposition().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def exposition(self) -> str:
        stamp = f" {round((time.time() - LAG_SECONDS) * 1000)}"
        lines = []
        for pod, depth in LAGGING_PODS.items():
            labels = f'namespace="{LAGGING}",pod="{pod}",deployment="{LAGGING}",app="{LAGGING}"'
            at = stamp if pod == "lag-0" else ""
            lines.append(f"inference_queue_depth{{{labels}}} {depth}{at}")
            lines.append(f"inference_concurrency{{{labels}}} {depth}{at}")
        return "\n".join(lines) + "\n"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def fetch(adapter: AdapterProcess, path: str) -> tuple[int, bytes]:
    """GET ``path`` as the certificate user: status and body."""
    context = ssl.create_default_context(cafile=str(adapter.ca_file))
    directory = adapter.kubeconfig.parent
    context.load_cert_chain(str(directory / "alice.crt"), str(directory / "alice.key"))
    try:
        with urllib.request.urlopen(f"{adapter.url}{path}", context=context, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def read(adapter: AdapterProcess, path: str) -> tuple[int, dict[str, Any]]:
    """GET ``path``: status and JSON body (a ``Status`` on errors)."""
    status, body = fetch(adapter, path)
    return status, json.loads(body)


def values(document: dict[str, Any]) -> dict[str, float]:
    """Item name (described object, or the external series' deployment) -> value."""
    return {
        item["describedObject"]["name"]
        if "describedObject" in item
        else item["metricLabels"]["deployment"]: float(parse_quantity(item["value"]))
        for item in document["items"]
    }


@dataclass
class Fleet:
    servers: dict[str, ModelServerProcess]
    prometheus: prometheus_server.PrometheusServer
    push: AdapterProcess
    """Fed by the pods' pushes."""
    pulled: AdapterProcess
    """``--source prometheus`` over the same pods."""


@pytest.fixture(scope="session")
def prometheus_binary(pytestconfig: pytest.Config) -> str:
    """Debian's ``prometheus``, installed now if missing (said on the terminal, past capture)."""
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")

    def say(text: str) -> None:
        with capture.global_and_fixture_disabled():
            print(f"\n[tests] {text}", file=sys.stderr, flush=True)

    return prometheus_server.ensure_installed(say)


def _start_pod(directory: Path, name: str, push: AdapterProcess, token: Path) -> ModelServerProcess:
    deployment, service_time = PODS[name]
    return start_model_server(
        directory,
        "--model-name=m",
        f"--pod-name={name}",
        f"--namespace={NAMESPACE}",
        f"--labels=app={deployment}",
        f"--deployment={deployment}",
        f"--pod-uid=uid-{name}",
        "--max-concurrency=1" if deployment == "slow" else "--max-concurrency=4",
        f"--service-time={service_time}",
        f"--adapter-url={push.url}",
        f"--adapter-ca-file={push.ca_file}",
        f"--push-token-file={token}",
        "--push-interval=100ms",
    )


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory, prometheus_binary: str) -> Iterator[Fleet]:
    """Everything started at once where it can be (each start is mostly interpreter start-up);
    Prometheus first, holding its port, told its targets once they listen."""
    directory = tmp_path_factory.mktemp("prometheus-fleet")
    for part in ("push", "pulled"):
        (directory / part).mkdir()
    prometheus = prometheus_server.PrometheusServer(prometheus_binary, directory, [])
    lagging = LaggingExporter()
    token = directory / "push-token"
    servers: dict[str, ModelServerProcess] = {}
    adapters: list[AdapterProcess] = []

    def start_pushing_side() -> AdapterProcess:
        push = start_adapter(directory / "push", f"--window={WINDOW_SECONDS}s")
        adapters.append(push)
        token.write_text(push.token)
        with ThreadPoolExecutor(len(PODS)) as pool:
            started = pool.map(lambda n: _start_pod(directory, n, push, token), PODS)
            servers.update(zip(PODS, started, strict=True))
        return push

    def start_pulled() -> AdapterProcess:
        pulled = start_adapter(
            directory / "pulled",
            "--source=prometheus",
            f"--prometheus-url={prometheus.url}",
            f"--window={WINDOW_SECONDS}s",
            "--max-age=10s",
            "--prometheus-gauge-window=1s",
            f"--prometheus-timeout={TIMEOUT_SECONDS}s",
        )
        adapters.append(pulled)
        return pulled

    try:
        prometheus.start()
        with ThreadPoolExecutor(2) as pool:
            pushing, pulling = pool.submit(start_pushing_side), pool.submit(start_pulled)
            push, pulled = pushing.result(), pulling.result()
        prometheus.scrape(
            [
                prometheus_server.Target(
                    server.url.removeprefix("http://"),
                    {"namespace": NAMESPACE, "pod": name, "deployment": kind, "app": kind},
                )
                for name, server in servers.items()
                for kind in [PODS[name][0]]
            ]
            + [prometheus_server.Target(lagging.address)]
        )
        for server in servers.values():
            wait_until_ready(server)
        prometheus.wait_for("up == 1", lambda samples: len(samples) == len(PODS) + 1)
        yield Fleet(servers, prometheus, push, pulled)
    finally:
        lagging.stop()
        for server in servers.values():
            server.process.kill()  # slow-0 may still hold requests: no drain wanted
        with ThreadPoolExecutor(len(adapters) + 1 + len(servers)) as pool:
            pool.map(stop, adapters)
            pool.submit(prometheus.stop)
            pool.map(stop_process, [server.process for server in servers.values()])


@pytest.fixture(scope="session")
def steady_traffic(fleet: Fleet) -> Iterator[subprocess.Popen[bytes]]:
    """``LOAD_RPS`` on p0 and p1, round robin, running; both windows are full of it."""
    duration = WINDOW_SECONDS + 3
    started = time.monotonic()
    load = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "model_server",
            "loadgen",
            f"--url={fleet.servers['p0'].url}",
            f"--url={fleet.servers['p1'].url}",
            "--model-name=m",
            f"--rate={LOAD_RPS}",
            f"--duration={duration}s",
            "--balance=round-robin",
            "--seed=13",
            "--report-interval=0",
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        time.sleep(max(0.0, WINDOW_SECONDS + 2 - (time.monotonic() - started)))
        assert load.poll() is None, "the load ended before the windows were full"
        yield load
    finally:
        if load.poll() is None and time.monotonic() - started > duration + 60:
            load.kill()
        load.wait(timeout=duration + 60)


@pytest.fixture(scope="session")
def traffic_done(steady_traffic: subprocess.Popen[bytes], fleet: Fleet) -> None:
    """The steady load has ended, no pod holds a request (slow-0's from the gauge test), and
    Prometheus has scraped the last counts."""
    steady_traffic.wait(timeout=60)
    in_namespace = f'{{namespace="{NAMESPACE}"}}'
    fleet.prometheus.wait_for(f"max(inference_concurrency{in_namespace}) == 0", bool)
    done = time.time()
    fleet.prometheus.wait_for(
        f"min(timestamp(inference_request_duration_seconds_count{in_namespace}))",
        lambda samples: bool(samples) and float(samples[0]["value"][1]) > done + 0.1,
    )


# --- real servers' surfaces: the vLLM and Triton mimics, each with a relay ---------------------

LLM_NAMESPACE = "llm"
MIMICS = {
    "vllm-0": (
        "vllm",
        "--mimic=vllm",
        "--model-name=llama",
        "--max-concurrency=16",
        "--prompt-tokens=100",
        "--output-tokens=40",
        "--time-per-output-token=8ms",
    ),
    "triton-0": ("triton", "--mimic=triton", "--model-name=resnet", "--max-concurrency=4"),
}


@dataclass
class Relay:
    process: subprocess.Popen[bytes]
    url: str
    """Of its own /metrics and /healthz."""


@dataclass
class RealServers:
    """The mimics (pods ``vllm-0`` of Deployment ``vllm``, ``triton-0`` of ``triton``, in
    namespace ``llm``), scraped by the fleet's Prometheus and by a relay each, which pushes to
    the fleet's push-mode adapter (``push``)."""

    servers: dict[str, ModelServerProcess]
    relays: dict[str, Relay]
    push: AdapterProcess
    prometheus: prometheus_server.PrometheusServer


def start_relay(
    directory: Path, pod: str, server_url: str, push: AdapterProcess, token: Path
) -> Relay:
    """``inference-adapter relay`` for ``pod``, pushing every 100 ms; ready once /healthz
    answers (its server may not answer yet: then it pushes nothing)."""
    deployment = MIMICS[pod][0]
    port = free_port()
    with (directory / f"relay-{pod}.log").open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "adapter",
                "relay",
                f"--preset={deployment}",
                f"--scrape={server_url}/metrics",
                "--host=127.0.0.1",
                f"--port={port}",
                f"--adapter-url={push.url}",
                f"--adapter-ca-file={push.ca_file}",
                f"--push-token-file={token}",
                "--push-interval=100ms",
                "--scrape-timeout=2s",
                f"--pod-name={pod}",
                f"--namespace={LLM_NAMESPACE}",
                f"--pod-uid=uid-{pod}",
                f"--labels=app={deployment}",
                f"--deployment={deployment}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    processes.wait_until_answering(f"{url}/healthz", process, timeout_seconds=60)
    return Relay(process, url)


@pytest.fixture(scope="session")
def real_servers(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServers]:
    """The mimics and their relays, all started side by side (a relay scrapes its server once
    it answers); Prometheus scrapes the mimics too."""
    directory = tmp_path_factory.mktemp("real-servers")
    token = directory / "push-token"
    token.write_text(fleet.push.token)
    urls = {pod: f"http://127.0.0.1:{free_port()}" for pod in MIMICS}
    servers: dict[str, ModelServerProcess] = {}
    relays: dict[str, Relay] = {}

    def start_pod(pod: str) -> ModelServerProcess:
        return start_model_server(
            directory, *MIMICS[pod][1:], port=int(urls[pod].rsplit(":", 1)[1])
        )

    try:
        fleet.prometheus.scrape(
            [
                *fleet.prometheus.targets,
                *(
                    prometheus_server.Target(
                        url.removeprefix("http://"),
                        {"namespace": LLM_NAMESPACE, "pod": pod, "deployment": MIMICS[pod][0]},
                    )
                    for pod, url in urls.items()
                ),
            ]
        )
        with ThreadPoolExecutor(2 * len(MIMICS)) as pool:
            starting = {pod: pool.submit(start_pod, pod) for pod in MIMICS}
            relaying = {
                pod: pool.submit(start_relay, directory, pod, urls[pod], fleet.push, token)
                for pod in MIMICS
            }
            servers.update({pod: started.result() for pod, started in starting.items()})
            relays.update({pod: started.result() for pod, started in relaying.items()})
        for server in servers.values():
            wait_until_ready(server)
        yield RealServers(servers, relays, fleet.push, fleet.prometheus)
    finally:
        with ThreadPoolExecutor(len(servers) + len(relays) or 1) as pool:
            pool.map(
                stop_process,
                [*(r.process for r in relays.values()), *(s.process for s in servers.values())],
            )
