"""A real ``inference-adapter serve`` process on 127.0.0.1, and the credentials to talk to it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from localcluster import processes
from tests.conftest import free_port

START_TIMEOUT_SECONDS = 20


@dataclass
class AdapterProcess:
    """A running adapter and the files a client needs."""

    process: subprocess.Popen
    url: str
    cert_dir: Path
    kubeconfig: Path
    log_file: Path

    @property
    def ca_file(self) -> Path:
        return self.cert_dir / "ca.crt"

    @property
    def token(self) -> str:
        return (self.cert_dir / "push-token").read_text().strip()

    def log(self) -> str:
        return self.log_file.read_text()


def start_adapter(tmp_path: Path, *extra: str, cert_dir: Path | None = None) -> AdapterProcess:
    """Start ``python -m adapter serve`` and wait until it answers; issue a kubeconfig."""
    cert_dir = cert_dir or tmp_path / "certs"
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    log_file = tmp_path / f"adapter-{port}.log"
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "adapter",
                "serve",
                "--bind-address",
                "127.0.0.1",
                "--secure-port",
                str(port),
                "--cert-dir",
                str(cert_dir),
                *extra,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        processes.wait_until_answering(
            f"{url}/healthz",
            process,
            ca_file=cert_dir / "ca.crt",
            timeout_seconds=START_TIMEOUT_SECONDS,
        )
    except BaseException:
        process.kill()
        process.wait()
        raise
    kubeconfig = tmp_path / "kubeconfig"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "adapter",
            "certs",
            "client",
            "alice",
            "--group",
            "metrics-readers",
            "--cert-dir",
            str(cert_dir),
            "--out-dir",
            str(tmp_path),
            "--kubeconfig",
            str(kubeconfig),
            "--server",
            url,
        ],
        check=True,
        capture_output=True,
    )
    return AdapterProcess(process, url, cert_dir, kubeconfig, log_file)


def stop(adapter: AdapterProcess) -> None:
    stop_process(adapter.process)


@pytest.fixture
def adapter_process(tmp_path: Path) -> Iterator[AdapterProcess]:
    adapter = start_adapter(tmp_path)
    try:
        yield adapter
    finally:
        stop(adapter)


@dataclass
class ModelServerProcess:
    """A running ``model-server`` and its base URL."""

    process: subprocess.Popen
    url: str
    log_file: Path

    def log(self) -> str:
        return self.log_file.read_text()


def start_model_server(tmp_path: Path, *flags: str, port: int | None = None) -> ModelServerProcess:
    """Start ``python -m model_server`` on 127.0.0.1 and wait until it is live (not ready)."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    log_file = tmp_path / f"model-server-{port}.log"
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
                "--model-size-mb",
                "1",
                *flags,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        processes.wait_until_answering(
            f"{url}/v2/health/live",
            process,
            timeout_seconds=START_TIMEOUT_SECONDS,
            poll_seconds=0.05,
        )
    except BaseException:
        process.kill()
        process.wait()
        raise
    return ModelServerProcess(process, url, log_file)


def wait_until_ready(server: ModelServerProcess) -> None:
    """Until the model is loaded (readiness answers 200)."""
    processes.wait_until_answering(
        f"{server.url}/v2/health/ready",
        server.process,
        timeout_seconds=START_TIMEOUT_SECONDS,
        poll_seconds=0.05,
    )


def stop_process(process: subprocess.Popen) -> int:
    """SIGTERM, then SIGKILL if it lingers (a drain may take its 30 s); the exit code."""
    return processes.stop(process, grace_seconds=40)


def metric_value(url: str, name: str) -> float:
    """One sample of a Prometheus exposition, e.g. ``inference_requests_total{outcome="ok"}``."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        text = response.read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise KeyError(name)


def run_loadgen_json(*flags: str, timeout: float = 180) -> dict:
    """Run ``model-server loadgen --json`` to completion and return its report."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "model_server",
            "loadgen",
            "--json",
            "--report-interval",
            "0",
            *flags,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
