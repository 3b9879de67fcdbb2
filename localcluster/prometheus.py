"""A real Prometheus server on this machine, for the tests and benchmarks: Debian's package.

``ensure_installed`` is the one place that installs it: when no ``prometheus`` binary is on the
PATH it runs ``apt-get install prometheus`` (after ``apt-get update`` when the package lists do
not know the package yet), saying so. The tests' session fixture calls it, so the README's test
command sets everything up on a fresh machine and a test never skips for want of it.

``PrometheusServer`` runs its own process with a generated configuration (static targets with
their target labels, one scrape interval), a temporary storage directory and a free port; the
package's own service and configuration are never used.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localcluster.ports import free_port

PACKAGE = "prometheus"
START_TIMEOUT_SECONDS = 30.0


def ensure_installed(say: Callable[[str], None] = print) -> str:
    """The path of the ``prometheus`` binary, installing Debian's package if it is missing."""
    found = shutil.which("prometheus")
    if found is not None:
        return found
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    policy = subprocess.run(
        ["apt-cache", "policy", PACKAGE], capture_output=True, text=True, check=False
    ).stdout
    if "Candidate:" not in policy or "Candidate: (none)" in policy:
        say(f"{PACKAGE} is not installed and the package lists lack it: running apt-get update")
        subprocess.run(["apt-get", "update", "-q"], check=True, env=environment)
    say(f"{PACKAGE} is not installed: installing Debian's package (apt-get install {PACKAGE})")
    started = time.monotonic()
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", PACKAGE],
        check=True,
        env=environment,
        stdout=subprocess.DEVNULL,
    )
    say(f"installed {PACKAGE} in {time.monotonic() - started:.0f} s")
    found = shutil.which("prometheus")
    if found is None:
        raise RuntimeError(f"apt-get installed {PACKAGE} but no prometheus binary is on the PATH")
    return found


@dataclass(frozen=True)
class Target:
    """One scrape target: ``host:port`` and the target labels its series get."""

    address: str
    labels: Mapping[str, str] = field(default_factory=dict)


def configuration(
    targets: Sequence[Target], scrape_interval_seconds: float, honor_labels: bool = False
) -> str:
    """A Prometheus configuration scraping ``targets`` (JSON is valid YAML). A target label
    ``__metrics_path__`` sets its path; ``honor_labels`` keeps the labels an exporter writes."""
    interval = f"{round(scrape_interval_seconds * 1000)}ms"
    return json.dumps(
        {
            "global": {"scrape_interval": interval, "scrape_timeout": interval},
            "scrape_configs": [
                {
                    "job_name": "model-servers",
                    "honor_labels": honor_labels,
                    "static_configs": [
                        {"targets": [t.address], "labels": dict(t.labels)} for t in targets
                    ],
                }
            ],
        },
        indent=2,
    )


class PrometheusServer:
    """One ``prometheus`` process of our own on 127.0.0.1 (restartable on the same port)."""

    def __init__(
        self,
        binary: str,
        directory: Path,
        targets: Sequence[Target],
        scrape_interval_seconds: float = 1.0,
        port: int | None = None,
        honor_labels: bool = False,
    ) -> None:
        self.binary = binary
        self.directory = directory
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_file = directory / "prometheus.json"
        self.scrape_interval_seconds = scrape_interval_seconds
        self.honor_labels = honor_labels
        self.targets = tuple(targets)
        """What it scrapes now."""
        self.config_file.write_text(configuration(targets, scrape_interval_seconds, honor_labels))
        self.log_file = directory / "prometheus.log"
        self.process: subprocess.Popen[bytes] | None = None

    def scrape(self, targets: Sequence[Target]) -> None:
        """Scrape ``targets`` from now on: the configuration is rewritten and, if running, it
        is reloaded (SIGHUP), so it can start, holding its port, before its targets exist."""
        self.targets = tuple(targets)
        self.config_file.write_text(
            configuration(targets, self.scrape_interval_seconds, self.honor_labels)
        )
        if self.process is not None:
            self.process.send_signal(signal.SIGHUP)

    def start(self, *flags: str) -> None:
        """Start it (with extra ``flags``) and wait until it is ready."""
        assert self.process is None, "already running"
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    self.binary,
                    f"--config.file={self.config_file}",
                    f"--storage.tsdb.path={self.directory / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    *flags,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self._ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self.log_file.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"prometheus not ready within {START_TIMEOUT_SECONDS:g} s")
            time.sleep(0.05)

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as answer:  # noqa: S310
                return bool(answer.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The samples of an instant query, straight from the HTTP API."""
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - our http URL
            document = json.loads(answer.read())
        return list(document["data"]["result"])

    def wait_for(
        self,
        promql: str,
        ready: Callable[[list[dict[str, Any]]], bool],
        timeout_seconds: float = START_TIMEOUT_SECONDS,
    ) -> None:
        """Poll ``promql`` until ``ready`` holds for its samples (generous deadline)."""
        deadline = time.monotonic() + timeout_seconds
        while not ready(self.query(promql)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{promql!r} did not become ready: {self.query(promql)}")
            time.sleep(0.1)
