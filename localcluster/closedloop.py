"""The whole loop on one machine: adapter, model pods, Service, HPA controller, load.

``ClosedLoop`` starts a standalone adapter process (generated TLS and push token), a Deployment of
``model-server`` processes pushing to it, a Service-like balancer in front of them and the
emulated HPA controller reading a real ``autoscaling/v2`` manifest; ``run(trace)`` drives an
open-loop load through the balancer with ``model-server loadgen`` and returns what happened. It is
an async context manager: leaving it (normally, on Ctrl-C or on any failure) stops every process
it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import os
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from aiohttp import web

from adapter import background, certs
from adapter.config import DEFAULT_SERVICE_NAME, DEFAULT_SERVICE_NAMESPACE
from localcluster import hpa, manifests, processes
from localcluster import replica_calculator as rc
from localcluster.balancer import Balancer
from localcluster.controller import HpaController, SyncRecord
from localcluster.cpu import CpuMeter
from localcluster.metrics_client import ApiFailure, MetricsClient
from localcluster.ports import free_port
from localcluster.supervisor import Deployment, DeploymentSpec

logger = logging.getLogger(__name__)

NAMESPACE = "inference"
DEPLOYMENT = "model"
MODEL_NAME = "model"
CONTROLLER_USER = "system:serviceaccount:kube-system:horizontal-pod-autoscaler"


@dataclass(frozen=True)
class LoopConfig:
    """How the loop runs; the defaults are the demo's."""

    hpa_manifest: Path
    work_dir: Path
    sync_period_seconds: float = 5.0
    """The controller's ``--horizontal-pod-autoscaler-sync-period`` (upstream: 15 s)."""
    service_time: str = "lognormal:50ms,0.4"
    max_concurrency: int = 4
    max_queue: int = 200
    model_size_mb: float = 256.0
    cpu_request_milli: int = 500
    initial_replicas: int = 1
    window: str = "30s"
    """The adapter's quantile window."""
    slo_seconds: float = 0.5
    push_interval: str = "1s"
    controller: hpa.ControllerConfig = field(default_factory=hpa.ControllerConfig)


@dataclass(frozen=True)
class Sample:
    """One observation of the fleet (every second)."""

    time: float
    live_replicas: int
    ready_replicas: int
    queue_depth: float | None
    p99_seconds: float | None


@dataclass
class LoopResult:
    """Everything a run produced."""

    started: float
    syncs: list[SyncRecord]
    samples: list[Sample]
    load_report: dict
    autoscaler: hpa.HorizontalPodAutoscaler
    """The HPA as read from its manifest (for its targets)."""


class ClosedLoop:
    """The running system; use ``async with ClosedLoop(config) as loop: await loop.run(...)``."""

    def __init__(self, config: LoopConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.autoscaler = manifests.load_hpa(config.hpa_manifest)
        self._stack = contextlib.AsyncExitStack()
        self.adapter_url = ""
        self.deployment: Deployment | None = None
        self.balancer_url = ""
        self.controller: HpaController | None = None
        self._client: MetricsClient | None = None
        self._cpu = CpuMeter(clock)

    # -- start-up --------------------------------------------------------------------------

    def _start_adapter(self, cert_dir: Path) -> subprocess.Popen:
        """Start the adapter process (from the main thread: see ``die_with_parent``) with a CA
        made here first, so this process and the adapter never race to create it."""
        certs.ensure_serving_files(
            cert_dir,
            certs.serving_hostnames(DEFAULT_SERVICE_NAME, DEFAULT_SERVICE_NAMESPACE),
            datetime.datetime.now(datetime.UTC),
        )
        port = free_port()
        self.adapter_url = f"https://127.0.0.1:{port}"
        log = (self.config.work_dir / "adapter.log").open("wb")
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "adapter",
                "serve",
                "--bind-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={cert_dir}",
                f"--window={self.config.window}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
            preexec_fn=processes.die_with_parent,  # noqa: PLW1509 - called from the event loop's thread
        )
        log.close()
        return process

    def _wait_for_adapter(self, cert_dir: Path, process: subprocess.Popen) -> None:
        try:
            processes.wait_until_answering(
                f"{self.adapter_url}/healthz", process, ca_file=cert_dir / certs.CA_CERT_FILE
            )
        except BaseException:
            processes.stop(process)
            raise

    def _controller_tls(self, cert_dir: Path) -> ssl.SSLContext:
        now = datetime.datetime.now(datetime.UTC)
        cert, key = certs.write_client_files(
            cert_dir,
            self.config.work_dir / "controller",
            CONTROLLER_USER,
            ["system:serviceaccounts"],
            now,
        )
        context = ssl.create_default_context(cafile=str(cert_dir / certs.CA_CERT_FILE))
        context.load_cert_chain(str(cert), str(key))
        return context

    def _deployment_spec(self, cert_dir: Path) -> DeploymentSpec:
        config = self.config
        return DeploymentSpec(
            name=DEPLOYMENT,
            namespace=NAMESPACE,
            labels={"app": DEPLOYMENT},
            server_args=(
                f"--model-name={MODEL_NAME}",
                "--mode=simulated",
                f"--service-time={config.service_time}",
                f"--max-concurrency={config.max_concurrency}",
                f"--max-queue={config.max_queue}",
                f"--model-size-mb={config.model_size_mb:g}",
                f"--adapter-url={self.adapter_url}",
                f"--adapter-ca-file={cert_dir / certs.CA_CERT_FILE}",
                f"--push-token-file={cert_dir / 'push-token'}",
                f"--push-interval={config.push_interval}",
            ),
            cpu_request_milli=config.cpu_request_milli,
        )

    async def _serve_balancer(self, balancer: Balancer) -> None:
        runner = web.AppRunner(balancer.make_app(), access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        self.balancer_url = f"http://127.0.0.1:{port}"
        self._stack.push_async_callback(runner.cleanup)

    def cpu_metrics(self) -> rc.PodMetrics:
        """The resource metrics API's answer for the Deployment's pods (CPU, millicores)."""
        assert self.deployment is not None
        samples = []
        for pod in self.deployment.pods:
            usage = self._cpu.usage(pod.process.pid)
            if usage is not None:
                samples.append(
                    rc.PodMetricSample(
                        pod.name, usage.milli_cpu, usage.timestamp, usage.window_seconds
                    )
                )
        return rc.PodMetrics(tuple(samples))

    async def __aenter__(self) -> ClosedLoop:
        work = self.config.work_dir
        work.mkdir(parents=True, exist_ok=True)
        cert_dir = work / "certs"
        try:
            adapter = self._start_adapter(cert_dir)
            self._stack.callback(processes.stop, adapter)
            await asyncio.to_thread(self._wait_for_adapter, cert_dir, adapter)
            self.deployment = await self._stack.enter_async_context(
                Deployment(self._deployment_spec(cert_dir), work / "pods", self.clock)
            )
            self.deployment.scale(self.config.initial_replicas)
            await self._serve_balancer(
                Balancer(lambda: [p.url for p in self.deployment.pods if p.serving])
            )
            self._client = await self._stack.enter_async_context(
                MetricsClient(self.adapter_url, self._controller_tls(cert_dir), self.cpu_metrics)
            )
            controller_config = replace(
                self.config.controller, sync_period_seconds=self.config.sync_period_seconds
            )
            self.controller = HpaController(
                self.autoscaler, self.deployment, self._client, controller_config, self.clock
            )
            await self._wait_ready(self.config.initial_replicas)
            await self._wait_for_first_push()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stack.aclose()

    async def _wait_ready(self, replicas: int, timeout_seconds: float = 60) -> None:
        assert self.deployment is not None
        deadline = time.monotonic() + timeout_seconds
        while self.deployment.ready_count() < replicas:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{replicas} replicas did not become ready")
            await asyncio.sleep(0.2)

    async def _wait_for_first_push(self, timeout_seconds: float = 30) -> None:
        """Start the clock once the adapter serves the pods' data, as in a running cluster."""
        assert self._client is not None
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(ApiFailure):
                await self._client.discover()
                if await self._object_value("inference_concurrency") is not None:
                    return
            await asyncio.sleep(0.2)
        raise TimeoutError("the adapter never served the pods' metrics")

    # -- running ---------------------------------------------------------------------------

    async def _object_value(self, metric: str) -> float | None:
        assert self._client is not None and self._client.custom_version is not None
        spec = hpa.MetricSpec(
            hpa.OBJECT,
            hpa.MetricTarget(hpa.VALUE, value_milli=1),
            metric_name=metric,
            described_object=hpa.ObjectReference("Deployment", DEPLOYMENT, "apps/v1"),
        )
        observed = await self._client.observe(NAMESPACE, spec, "")
        if isinstance(observed, rc.ObjectMetricValue):
            return observed.value_milli / 1000
        return None

    async def _sample_forever(self, samples: list[Sample]) -> None:
        assert self.deployment is not None and self._client is not None
        while True:
            pods = self.deployment.pods
            self._cpu.sample([p.process.pid for p in pods if p.process.poll() is None])
            if self._client.custom_version is None:
                with contextlib.suppress(Exception):
                    await self._client.discover()
            queue = p99 = None
            if self._client.custom_version is not None:
                queue = await self._object_value("inference_queue_depth")
                p99 = await self._object_value("inference_latency_p99_seconds")
            samples.append(
                Sample(
                    self.clock(),
                    sum(1 for p in pods if p.process.poll() is None),
                    self.deployment.ready_count(),
                    queue,
                    p99,
                )
            )
            await asyncio.sleep(1.0)

    async def run(
        self,
        trace_csv: Path,
        duration_seconds: float,
        on_sync: Callable[[SyncRecord, Sample | None], None] = lambda record, sample: None,
        seed: int = 1,
    ) -> LoopResult:
        """Drive the load of ``trace_csv`` (time,rate rows) through the balancer."""
        assert self.controller is not None
        syncs: list[SyncRecord] = []
        samples: list[Sample] = []
        started = self.clock()

        def record(sync: SyncRecord) -> None:
            syncs.append(sync)
            on_sync(sync, samples[-1] if samples else None)

        load = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "model_server",
            "loadgen",
            f"--url={self.balancer_url}",
            f"--model-name={MODEL_NAME}",
            f"--profile=csv:{trace_csv}",
            f"--duration={duration_seconds:g}s",
            f"--slo={self.config.slo_seconds * 1000:g}ms",
            f"--seed={seed}",
            "--timeout=10s",
            "--report-interval=0",
            "--json",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        try:
            async with (
                background.running(self._sample_forever(samples)),
                background.running(self.controller.run(record)),
            ):
                stdout, stderr = await load.communicate()
        finally:
            if load.returncode is None:
                load.kill()
                await load.wait()
        if load.returncode != 0:
            raise RuntimeError(f"the load generator failed: {stderr.decode()[-500:]}")
        return LoopResult(started, syncs, samples, json.loads(stdout), self.autoscaler)
