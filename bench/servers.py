"""Server processes for the benchmarks: our adapter and the baseline, on 127.0.0.1.

``start_adapter`` runs ``python -m adapter serve`` exactly as an operator would (certificates and
push token generated in the cert dir on first start); ``start_baseline`` runs
``python -m bench.baseline`` over the same certificate. Both wait for ``/healthz``, bounded in
time. ``pin`` sets the CPU affinity of every thread of a process; ``cpu_seconds`` reads its user
plus system CPU time and ``rss_bytes`` its resident memory from /proc.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import ssl
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from adapter import certs
from localcluster import processes
from localcluster.ports import free_port

STARTUP_TIMEOUT_SECONDS = 60.0
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def prepare_certs(cert_dir: Path, client_name: str = "bench") -> tuple[Path, Path]:
    """CA, serving certificate (as the adapter makes them) and a client certificate."""
    now = datetime.datetime.now(datetime.UTC)
    hostnames = certs.serving_hostnames(
        "inference-metrics-adapter", "metrics"
    )  # the adapter's defaults, so it reuses these files
    certs.ensure_serving_files(cert_dir, hostnames, now)
    return certs.write_client_files(cert_dir, cert_dir, client_name, [], now)


def client_context(cert_dir: Path, client_cert: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    """TLS trusting the CA in ``cert_dir``, presenting ``client_cert`` if given."""
    context = ssl.create_default_context(cafile=str(cert_dir / certs.CA_CERT_FILE))
    if client_cert is not None:
        context.load_cert_chain(str(client_cert[0]), str(client_cert[1]))
    return context


@dataclass
class Server:
    """A running server process."""

    name: str
    process: subprocess.Popen[bytes]
    url: str
    log: IO[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s; this process only."""
        processes.stop(self.process)
        self.log.close()


def wait_until_answering(server: Server, path: str, ca_file: Path | None = None) -> None:
    """Until ``path`` answers 2xx; the server is stopped if it never does."""
    try:
        processes.wait_until_answering(
            server.url + path,
            server.process,
            ca_file=ca_file,
            timeout_seconds=STARTUP_TIMEOUT_SECONDS,
        )
    except (RuntimeError, TimeoutError) as error:
        server.stop()
        raise RuntimeError(f"{server.name}: {error}; see its log") from error


def _start(name: str, argv: list[str], port: int, cert_dir: Path, log_file: Path) -> Server:
    log = log_file.open("wb")
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
    )
    server = Server(name, process, f"https://127.0.0.1:{port}", log)
    wait_until_answering(server, "/healthz", cert_dir / certs.CA_CERT_FILE)
    return server


def start_adapter(cert_dir: Path, log_file: Path, extra: list[str] | None = None) -> Server:
    """``python -m adapter serve`` on a free port of 127.0.0.1 with ``cert_dir``."""
    port = free_port()
    argv = [
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
        *(extra or []),
    ]
    return _start("adapter", argv, port, cert_dir, log_file)


def start_baseline(
    cert_dir: Path, log_file: Path, bodies: Mapping[str, Path] | None = None
) -> Server:
    """``python -m bench.baseline`` on a free port, same certificate as the adapter, serving
    each of ``bodies`` at ``/static/{name}``."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "bench.baseline",
        "--port",
        str(port),
        "--cert-dir",
        str(cert_dir),
    ]
    for name, path in (bodies or {}).items():
        argv += ["--body", f"{name}={path}"]
    return _start("baseline", argv, port, cert_dir, log_file)


def pin(pid: int, cpus: set[int]) -> None:
    """Set the affinity of every thread of ``pid`` (threads made later inherit it)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.sched_setaffinity(int(tid), cpus)


def rss_bytes(pid: int | str = "self") -> int:
    """Resident set size of process ``pid`` (default: this one), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process ``pid`` (all threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / _CLOCK_TICKS
