"""Freshness: from a step in a pod's latency to the changed p99 being visible through the API.

Our adapter process runs at its defaults (``python -m adapter serve`` with no tuning flags: 30 s
window, 10 s max age). ``bench.stepping_pods``, a separate process, runs ``pods`` pods, each with
the real ``adapter.client.PushClient`` at its default push interval and a steady ~50 ms latency
for ``steady_seconds`` (a full window), then a step to ~400 ms at a random instant. Meanwhile this
process asks the adapter every ``poll_seconds`` for the pods' p99 by selector (HTTPS, client
certificate), as the HPA would, and notes when each pod's served p99 first crosses the geometric
mean of the two levels. Each pod is one trial: delay = first answer showing the change (time it
was received) - step. Also split into: waiting for the pod's next push, delivering it, and the
rest (adapter plus poll period). Target: at most one push interval + 1 s.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from adapter import certs
from adapter.client import PushClient
from adapter.quantity import parse_quantity
from bench import query, servers, stats, stepping_pods

PUSH_INTERVAL_SECONDS: float = inspect.signature(PushClient).parameters["interval_seconds"].default
"""The client's default push interval, read from the client so the target follows it."""
BEFORE_SECONDS = 0.05
AFTER_SECONDS = 0.4
THRESHOLD_SECONDS = math.sqrt(BEFORE_SECONDS * AFTER_SECONDS)
TARGET_SECONDS = PUSH_INTERVAL_SECONDS + 1.0


@dataclass(frozen=True)
class FreshnessSettings:
    pods: int = 10
    """Pods stepping, each one trial."""
    steady_seconds: float = 32.0
    """Before the earliest step: the 30 s window full of the old latency."""
    step_spread: float = 3.0
    hold_seconds: float = 4.0
    poll_seconds: float = 0.05
    rate: float = 100.0
    """Requests per second per pod."""
    pin: bool = True


class _Crossings:
    """For each pod, when its served p99 was first seen above the threshold."""

    def __init__(self) -> None:
        self.first_above: dict[str, float] = {}
        self.polls = 0
        self.failed_polls = 0

    def observe(self, body: bytes, received: float) -> None:
        for item in json.loads(body)["items"]:
            name = item["describedObject"]["name"]
            value = float(parse_quantity(item["value"]))
            if value >= THRESHOLD_SECONDS and name not in self.first_above:
                self.first_above[name] = received


async def _poll(
    session: aiohttp.ClientSession,
    url: str,
    every: float,
    crossings: _Crossings,
    done: asyncio.Event,
) -> None:
    while not done.is_set():
        async with session.get(url) as response:
            body = await response.read()
        crossings.polls += 1
        if response.status == 200:
            crossings.observe(body, time.time())
        else:  # before the first pushes arrive: 404
            crossings.failed_polls += 1
        await asyncio.sleep(every)


async def _observe(
    settings: FreshnessSettings,
    ours: servers.Server,
    cert_dir: Path,
    client_cert: tuple[Path, Path],
) -> tuple[list[dict[str, Any]], _Crossings]:
    base = f"{ours.url}/apis/custom.metrics.k8s.io/v1beta2/namespaces/{stepping_pods.NAMESPACE}"
    selector = ",".join(f"{k}={v}" for k, v in stepping_pods.LABELS.items())
    url = f"{base}/pods/*/inference_latency_p99_seconds?labelSelector={selector}"
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.stepping_pods",
        "--url",
        ours.url,
        "--ca-file",
        str(cert_dir / certs.CA_CERT_FILE),
        "--token-file",
        str(cert_dir / "push-token"),
        "--pods",
        str(settings.pods),
        "--rate",
        str(settings.rate),
        "--before",
        str(BEFORE_SECONDS),
        "--after",
        str(AFTER_SECONDS),
        "--steady-seconds",
        str(settings.steady_seconds),
        "--step-spread",
        str(settings.step_spread),
        "--hold-seconds",
        str(settings.hold_seconds),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    crossings, done = _Crossings(), asyncio.Event()
    connector = aiohttp.TCPConnector(ssl=servers.client_context(cert_dir, client_cert), limit=1)
    timeout = aiohttp.ClientTimeout(total=10)
    limit = settings.steady_seconds + settings.step_spread + settings.hold_seconds + 60
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        poller = asyncio.create_task(_poll(session, url, settings.poll_seconds, crossings, done))
        try:
            out, err = await asyncio.wait_for(child.communicate(), limit)
        finally:
            done.set()
            if child.returncode is None:
                child.kill()
            await poller
    if child.returncode != 0:
        raise RuntimeError(f"bench.stepping_pods failed: {err.decode()[-2000:]}")
    pods = [json.loads(line) for line in out.decode().splitlines()]
    return pods, crossings


def trial(pod: dict[str, Any], visible: float | None) -> dict[str, Any]:
    """One pod's delays, from its step, its pushes and when the API first showed the change."""
    step = pod["step_unix"]
    after = [(c, a) for c, a in pod["pushes"] if c > step]
    result: dict[str, Any] = {"pod": pod["pod"], "step_unix": step, "visible_unix": visible}
    if visible is None or step is None or not after:
        return {**result, "valid": False, "why": "never visible (or no push after the step)"}
    if visible < step:
        return {**result, "valid": False, "why": "changed before the step"}
    collected, acknowledged = after[0]
    return {
        **result,
        "valid": True,
        "delay_seconds": visible - step,
        "wait_for_push_seconds": collected - step,
        "delivery_seconds": acknowledged - collected,
        "push_to_visible_seconds": visible - acknowledged,
        "pushes_until_visible": sum(1 for _, a in after if a <= visible),
    }


def run(settings: FreshnessSettings, log: Callable[[str], Any] = print) -> dict[str, Any]:
    """Start the adapter at its defaults, run the stepping pods, and summarize the trials."""
    server_cpus, client_cpus = query.cpu_plan(settings.pin)
    with tempfile.TemporaryDirectory(prefix="bench-freshness-") as tmp:
        cert_dir = Path(tmp) / "certs"
        client_cert = servers.prepare_certs(cert_dir)
        ours = servers.start_adapter(cert_dir, Path(tmp) / "adapter.log")
        try:
            if server_cpus:
                servers.pin(ours.pid, server_cpus)
            with query.pinned(client_cpus):
                pods, crossings = asyncio.run(_observe(settings, ours, cert_dir, client_cert))
        finally:
            ours.stop()
    trials = [trial(pod, crossings.first_above.get(pod["pod"])) for pod in pods]
    for one in trials:
        log(
            f"  freshness {one['pod']}: "
            + (f"{one['delay_seconds']:.2f} s" if one["valid"] else f"INVALID ({one['why']})")
        )
    return summarize(settings, trials, crossings)


def summarize(
    settings: FreshnessSettings, trials: list[dict[str, Any]], crossings: _Crossings
) -> dict[str, Any]:
    """The figure (median delay) with p90, max, the median parts and every trial."""
    valid = [t for t in trials if t["valid"]]
    delays = [t["delay_seconds"] for t in valid]

    def median_of(key: str) -> float:
        return stats.median([t[key] for t in valid])

    parts = {
        key: median_of(key)
        for key in ("wait_for_push_seconds", "delivery_seconds", "push_to_visible_seconds")
    }
    worst = max(delays) if delays else math.nan
    median = stats.median(delays)
    lines = [
        f"Freshness over {len(valid)} of {len(trials)} valid trials: median {median:.2f} s,"
        f" p90 {stats.percentile(delays, 90):.2f} s, max {worst:.2f} s; medians of the parts:"
        f" waiting for the next push {parts['wait_for_push_seconds']:.2f} s, delivering it"
        f" {parts['delivery_seconds']:.3f} s, push answered to visible"
        f" {parts['push_to_visible_seconds']:.2f} s (poll every {settings.poll_seconds:g} s);"
        f" visible after the first push in"
        f" {sum(t['pushes_until_visible'] == 1 for t in valid)} trials, the second in"
        f" {sum(t['pushes_until_visible'] == 2 for t in valid)}."
    ]
    return {
        "name": "freshness: latency step to changed p99 through the API",
        "unit": "s",
        "ours": median,
        "ours_p90": stats.percentile(delays, 90),
        "ours_max": worst,
        "baseline": None,
        "ratio": None,
        "target": f"every trial <= {TARGET_SECONDS:g} s (push interval + 1 s)",
        "met": len(valid) == len(trials) and worst <= TARGET_SECONDS,
        "parts_median_seconds": parts,
        "trials": trials,
        "polls": crossings.polls,
        "polls_not_200": crossings.failed_polls,
        "settings": {
            **settings.__dict__,
            "push_interval_seconds": PUSH_INTERVAL_SECONDS,
            "before_seconds": BEFORE_SECONDS,
            "after_seconds": AFTER_SECONDS,
            "threshold_seconds": THRESHOLD_SECONDS,
        },
        "markdown": lines,
    }
