"""A real ``inference-adapter serve`` process on 127.0.0.1, and the credentials to talk to it."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

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


def wait_until_healthy(url: str, ca_file: Path, process: subprocess.Popen) -> None:
    """Poll ``/healthz`` until the server answers, or fail with its log."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the adapter exited with {process.returncode}")
        try:
            context = ssl.create_default_context(cafile=str(ca_file)) if ca_file.exists() else None
            if context is not None:
                with urllib.request.urlopen(f"{url}/healthz", context=context, timeout=1):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"the adapter at {url} did not become healthy")


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
        wait_until_healthy(url, cert_dir / "ca.crt", process)
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


def wait_until_live(url: str, process: subprocess.Popen) -> None:
    """Poll ``/v2/health/live`` until the server answers, or fail."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the model server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/v2/health/live", timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"the model server at {url} did not come up")


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
        wait_until_live(url, process)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return ModelServerProcess(process, url, log_file)


def wait_until_ready(server: ModelServerProcess) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{server.url}/v2/health/ready", timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"the model server at {server.url} never became ready")


def stop_process(process: subprocess.Popen) -> int:
    """SIGTERM, then SIGKILL if it lingers; returns the exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


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
