"""A Deployment's replicas as real ``model-server`` processes: a one-machine ReplicaSet.

``Deployment`` starts pods named like Kubernetes names them (``model-7d4b9c5f8d-x2k8p``: the
Deployment, a hash of the pod template, five random characters), each a ``python -m model_server``
process with its identity (labels, uid, the Deployment as owner) passed the way the downward API
would. A probe loop tracks each pod's phase and readiness (a pod is ready once its model has loaded,
as its readiness probe reports), with the time of the last readiness transition, which the HPA's
CPU logic reads. Scaling down picks victims as a ReplicaSet does (not-ready before ready, then the
most recently ready) and terminates them gracefully: SIGTERM, the pod drains, and it is shown as
deleting until its process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

import aiohttp

from localcluster.ports import free_port
from localcluster.processes import die_with_parent

logger = logging.getLogger(__name__)

PROBE_INTERVAL_SECONDS = 0.5
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
"""The characters Kubernetes uses for generated name suffixes."""


def template_hash(args: Sequence[str]) -> str:
    """A stable 10-character hash of the pod template, like ``pod-template-hash``."""
    digest = hashlib.sha256("\0".join(args).encode()).digest()
    return "".join(_NAME_ALPHABET[b % len(_NAME_ALPHABET)] for b in digest[:10])


def pod_name(deployment: str, pod_template_hash: str) -> str:
    """``<deployment>-<hash>-<5 random>``."""
    suffix = "".join(secrets.choice(_NAME_ALPHABET) for _ in range(5))
    return f"{deployment}-{pod_template_hash}-{suffix}"


class RankedPod(Protocol):
    """What a ReplicaSet reads of a pod to choose which to delete."""

    created: float
    ready: bool
    ready_since: float | None
    deleting_since: float | None


Ranked = TypeVar("Ranked", bound=RankedPod)


def victims(pods: Sequence[Ranked], count: int) -> list[Ranked]:
    """Which ``count`` pods to delete, as a ReplicaSet ranks them: not ready first, then the
    most recently ready, then the newest (pods already terminating are not candidates)."""
    candidates = [p for p in pods if p.deleting_since is None]
    candidates.sort(key=lambda p: (p.ready, -(p.ready_since or 0.0), -p.created))
    return candidates[:count]


@dataclass
class Pod:
    """One replica: its process and what the control plane knows of it."""

    name: str
    uid: str
    port: int
    process: subprocess.Popen
    created: float
    log_file: Path
    started: bool = False
    """Whether its server has answered a probe (the container is running)."""
    ready: bool = False
    ready_since: float | None = None
    """When readiness last changed (the Ready condition's lastTransitionTime)."""
    deleting_since: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def phase(self) -> str:
        """``Pending`` until its server answers, ``Running`` while it runs, then ``Succeeded``
        or ``Failed`` by exit code."""
        code = self.process.poll()
        if code is not None:
            return "Succeeded" if code == 0 else "Failed"
        return "Running" if self.started else "Pending"

    @property
    def serving(self) -> bool:
        """Whether a Service would send it traffic (ready and not terminating)."""
        return self.ready and self.deleting_since is None and self.process.poll() is None


@dataclass
class DeploymentSpec:
    """What the supervisor runs: a name, labels, the model-server flags, resources."""

    name: str
    namespace: str = "default"
    labels: dict[str, str] = field(default_factory=lambda: {"app": "model"})
    server_args: tuple[str, ...] = ()
    """Flags for every model-server (mode, service time, adapter URL, push token...)."""
    cpu_request_milli: int = 500
    termination_grace_seconds: float = 30.0


class Deployment:
    """Runs and scales the replicas of one ``DeploymentSpec``."""

    def __init__(
        self,
        spec: DeploymentSpec,
        log_dir: Path,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.spec = spec
        self.log_dir = log_dir
        self.clock = clock
        self.pods: list[Pod] = []
        self.replicas = 0
        self.hash = template_hash(spec.server_args)
        self._session: aiohttp.ClientSession | None = None
        self._probe_task: asyncio.Task[None] | None = None

    @property
    def selector(self) -> str:
        """The label selector of its pods, as a Deployment's scale subresource reports it."""
        return ",".join(f"{k}={v}" for k, v in sorted(self.spec.labels.items()))

    @property
    def cpu_request_milli(self) -> int | None:
        """Each pod's CPU request, for utilization targets."""
        return self.spec.cpu_request_milli

    def ready_count(self) -> int:
        return sum(1 for p in self.pods if p.serving)

    def _start_pod(self) -> Pod:
        name = pod_name(self.spec.name, self.hash)
        uid = str(uuid.uuid4())
        port = free_port()
        labels = ",".join(f"{k}={v}" for k, v in {**self.spec.labels}.items())
        log_file = self.log_dir / f"{name}.log"
        environment = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "POD_NAME": name,
            "POD_NAMESPACE": self.spec.namespace,
            "POD_UID": uid,
        }
        with log_file.open("wb") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "model_server",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--labels",
                    labels,
                    "--deployment",
                    self.spec.name,
                    "--drain-timeout",
                    f"{self.spec.termination_grace_seconds:g}s",
                    *self.spec.server_args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
                start_new_session=True,
                preexec_fn=die_with_parent,  # noqa: PLW1509 - called from the event loop's thread
            )
        pod = Pod(name, uid, port, process, self.clock(), log_file)
        logger.info("created pod %s (port %d)", name, port)
        return pod

    def scale(self, replicas: int) -> None:
        """Set the desired replica count: start pods, or terminate the surplus gracefully."""
        self.replicas = replicas
        active = [p for p in self.pods if p.deleting_since is None]
        for _ in range(replicas - len(active)):
            self.pods.append(self._start_pod())
        for pod in victims(self.pods, max(0, len(active) - replicas)):
            pod.deleting_since = self.clock()
            if pod.process.poll() is None:
                pod.process.send_signal(signal.SIGTERM)
            logger.info("terminating pod %s", pod.name)

    async def _probe(self, pod: Pod) -> None:
        assert self._session is not None
        ready = False
        if pod.process.poll() is None:
            try:
                async with self._session.get(
                    f"{pod.url}/v2/health/ready", timeout=aiohttp.ClientTimeout(total=1)
                ) as response:
                    pod.started = True  # any answer: the container runs
                    ready = response.status == 200
            except (aiohttp.ClientError, TimeoutError):
                pass
        if ready != pod.ready:
            pod.ready = ready
            pod.ready_since = self.clock()

    async def _probe_loop(self) -> None:
        while True:
            await asyncio.gather(*(self._probe(p) for p in self.pods))
            self._reap()
            self._restart_crashed()
            await asyncio.sleep(PROBE_INTERVAL_SECONDS)

    def _reap(self) -> None:
        """Forget terminated pods; kill those past their grace period."""
        now = self.clock()
        for pod in list(self.pods):
            if pod.deleting_since is None:
                continue
            if pod.process.poll() is not None:
                self.pods.remove(pod)
            elif now - pod.deleting_since > self.spec.termination_grace_seconds + 5:
                pod.process.kill()

    def _restart_crashed(self) -> None:
        """A replica whose process died on its own is replaced, as a ReplicaSet would."""
        for pod in list(self.pods):
            if pod.deleting_since is None and pod.process.poll() is not None:
                logger.warning("pod %s exited with %s; replacing it", pod.name, pod.process.poll())
                self.pods.remove(pod)
                self.pods.append(self._start_pod())

    async def __aenter__(self) -> Deployment:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._session = aiohttp.ClientSession()
        self._probe_task = asyncio.ensure_future(self._probe_loop())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Stop every pod it started (SIGTERM, then SIGKILL after a short wait)."""
        if self._probe_task is not None:
            self._probe_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe_task
        for pod in self.pods:
            if pod.process.poll() is None:
                pod.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for pod in self.pods:
            try:
                await asyncio.to_thread(pod.process.wait, max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pod.process.kill()
                pod.process.wait()
        self.pods.clear()
        if self._session is not None:
            await self._session.close()
