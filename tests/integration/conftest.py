"""A real ``inference-adapter serve`` process on 127.0.0.1, and the credentials to talk to it."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509

from adapter import __main__ as adapter_cli
from localcluster import processes
from tests.conftest import exposition_sample, free_port

START_TIMEOUT_SECONDS = 20


@dataclass
class AdapterProcess:
    """A running adapter and the files a client needs."""

    process: subprocess.Popen
    url: str
    cert_dir: Path
    kubeconfig: Path
    log_file: Path
    flags: tuple[str, ...] = ()
    """The extra ``serve`` flags it was started with (a restart uses them again)."""
    answering_since: float = 0.0
    """``time.monotonic()`` when it first answered ``/healthz``."""

    @property
    def ca_file(self) -> Path:
        return self.cert_dir / "ca.crt"

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def token(self) -> str:
        return (self.cert_dir / "push-token").read_text().strip()

    def log(self) -> str:
        return self.log_file.read_text()


def spawn_adapter(
    cert_dir: Path, port: int, log_file: Path, flags: tuple[str, ...], host: str = "127.0.0.1"
) -> subprocess.Popen:
    """``python -m adapter serve`` on ``host``:``port``, once it answers (log appended to)."""
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "adapter",
                "serve",
                "--bind-address",
                host,
                "--secure-port",
                str(port),
                "--cert-dir",
                str(cert_dir),
                *flags,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        processes.wait_until_answering(
            f"https://{host}:{port}/healthz",
            process,
            ca_file=cert_dir / "ca.crt",
            verify_name=host == "127.0.0.1",  # the generated certificate names no other address
            timeout_seconds=START_TIMEOUT_SECONDS,
        )
    except BaseException:
        process.kill()
        process.wait()
        raise
    return process


def start_adapter(tmp_path: Path, *extra: str, cert_dir: Path | None = None) -> AdapterProcess:
    """Start ``python -m adapter serve`` and wait until it answers; issue a kubeconfig."""
    cert_dir = cert_dir or tmp_path / "certs"
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    log_file = tmp_path / f"adapter-{port}.log"
    process = spawn_adapter(cert_dir, port, log_file, extra)
    answering_since = time.monotonic()
    kubeconfig = tmp_path / "kubeconfig"
    # What `inference-adapter certs client` runs, without a second interpreter's start-up.
    with contextlib.redirect_stdout(io.StringIO()):
        adapter_cli.issue_client(
            adapter_cli.build_parser().parse_args(
                [
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
                ]
            )
        )
    return AdapterProcess(process, url, cert_dir, kubeconfig, log_file, extra, answering_since)


def restart_adapter(adapter: AdapterProcess) -> AdapterProcess:
    """The same command line again (port, cert dir, flags) after the old process has exited;
    the CA, serving certificate, push token and kubeconfig on disk stay valid."""
    assert adapter.process.poll() is not None, "stop the old adapter first"
    process = spawn_adapter(adapter.cert_dir, adapter.port, adapter.log_file, adapter.flags)
    return dataclasses.replace(adapter, process=process, answering_since=time.monotonic())


def served_certificate(url: str, ca_file: Path) -> x509.Certificate:
    """The certificate a fresh TLS handshake with the server presents (verified against CA)."""
    host, port = url.removeprefix("https://").rsplit(":", 1)
    context = ssl.create_default_context(cafile=str(ca_file))
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
    assert der is not None
    return x509.load_der_x509_certificate(der)


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


def start_model_pods(
    tmp_path: Path, namespace: str, names: Sequence[str], *flags: str
) -> dict[str, ModelServerProcess]:
    """A ``model-server`` (model ``m``) for each pod name of Deployment ``model`` (label
    ``app=model``, uid ``uid-<i>``), with ``flags``, started side by side; when one fails, the
    others are stopped and its error is raised."""

    def start(index: int) -> ModelServerProcess:
        return start_model_server(
            tmp_path,
            "--model-name=m",
            f"--pod-name={names[index]}",
            f"--namespace={namespace}",
            f"--pod-uid=uid-{index}",
            "--labels=app=model",
            "--deployment=model",
            *flags,
        )

    with ThreadPoolExecutor(len(names)) as pool:  # their start-ups overlap
        starting = {name: pool.submit(start, index) for index, name in enumerate(names)}
    started = {name: f.result() for name, f in starting.items() if not f.exception()}
    if len(started) < len(names):
        for pod in started.values():
            pod.process.kill()
            pod.process.wait()
        for future in starting.values():
            future.result()  # the first failure
    return started


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
        return exposition_sample(response.read().decode(), name)


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
