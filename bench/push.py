"""Push throughput: our adapter against a bare aiohttp server, same TLS, same JSON, same load.

Both servers run as real processes (pinned to one CPU when the machine has two or more); the load
comes from ``bench.load`` (on ``bench.closed_loop``) in a separate process pinned to another CPU.
Runs alternate ours/baseline so that noise hits both; each run is ``duration`` measured seconds
after a warm-up.
The figure is the median over runs of requests/s, and ours/baseline of the medians (target
>= 0.8). A run counts only if every answer was a 200, and for ours ``{"accepted":true}``.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from adapter import certs
from adapter import push as adapter_push
from adapter.config import ServerConfig
from adapter.store import Applied, Store
from bench import closed_loop, servers, stats, workload

TARGET_RATIO = 0.8
ACCEPTED = '{"accepted":true}'


@dataclass(frozen=True)
class PushSettings:
    runs: int = 5
    duration_seconds: float = 5.0
    warmup_seconds: float = 1.0
    concurrency: int = 32
    pods: int = 1000
    pin: bool = True


def cpu_plan(pin: bool) -> tuple[set[int] | None, set[int] | None]:
    """(server CPUs, load CPUs): the first allowed CPU for servers, the last for the load."""
    allowed = sorted(os.sched_getaffinity(0))
    if not pin or len(allowed) < 2:
        return None, None
    return {allowed[0]}, {allowed[-1]}


def run_load(
    server: servers.Server,
    cert_dir: Path,
    settings: PushSettings,
    seq_start: int,
    expect: str | None,
    load_cpus: set[int] | None,
    duration: float,
) -> dict[str, Any]:
    """One ``bench.load`` run against ``server``: its JSON report."""
    argv = [
        "--url",
        server.url,
        "--ca-file",
        str(cert_dir / certs.CA_CERT_FILE),
        "--token-file",
        str(cert_dir / "push-token"),
        "--pods",
        str(settings.pods),
        "--seq-start",
        str(seq_start),
    ]
    if expect is not None:
        argv += ["--expect", expect]
    return closed_loop.spawn("bench.load", argv, server, settings, load_cpus, duration)


def run(settings: PushSettings, log=print) -> dict[str, Any]:
    """Run the push benchmark; returns the figure with every run's details."""
    server_cpus, load_cpus = cpu_plan(settings.pin)
    with tempfile.TemporaryDirectory(prefix="bench-push-") as tmp:
        cert_dir = Path(tmp) / "certs"
        servers.prepare_certs(cert_dir)
        ours = servers.start_adapter(cert_dir, Path(tmp) / "adapter.log")
        baseline = None
        try:
            baseline = servers.start_baseline(cert_dir, Path(tmp) / "baseline.log")
            if server_cpus:
                servers.pin(ours.pid, server_cpus)
                servers.pin(baseline.pid, server_cpus)
            seq = 0  # every push, across all runs, carries a seq new to the adapter

            def pusher(server: servers.Server, expect: str | None):
                def one_run(duration: float) -> dict[str, Any]:
                    nonlocal seq
                    result = run_load(server, cert_dir, settings, seq, expect, load_cpus, duration)
                    seq = max(seq, result["next_seq"])
                    return result

                return one_run

            runs = closed_loop.alternate(
                "push", settings, pusher(ours, ACCEPTED), pusher(baseline, None), log
            )
        finally:
            ours.stop()
            if baseline is not None:
                baseline.stop()
        adapter_log_tail = (Path(tmp) / "adapter.log").read_bytes()[-600:].decode(errors="replace")
    return summarize(settings, runs, server_cpus, load_cpus, adapter_log_tail)


def summarize(
    settings: PushSettings,
    runs: dict[str, list[dict[str, Any]]],
    server_cpus: set[int] | None,
    load_cpus: set[int] | None,
    adapter_log_tail: str,
) -> dict[str, Any]:
    valid = all(r["valid"] for rs in runs.values() for r in rs)
    ours_rps = stats.median([r["requests_per_second"] for r in runs["ours"]])
    base_rps = stats.median([r["requests_per_second"] for r in runs["baseline"]])
    ours_cpu = stats.median([r["server_cpu_us_per_request"] or 0 for r in runs["ours"]])
    base_cpu = stats.median([r["server_cpu_us_per_request"] or 0 for r in runs["baseline"]])
    per_run = [
        stats.ratio(o["requests_per_second"], b["requests_per_second"])
        for o, b in zip(runs["ours"], runs["baseline"], strict=True)
    ]
    ratio = stats.ratio(ours_rps, base_rps)
    return {
        "name": "push throughput",
        "unit": "requests/s",
        "ours": ours_rps,
        "baseline": base_rps,
        "ratio": ratio,
        "ratio_per_run": per_run,
        "target": f"ratio >= {TARGET_RATIO}",
        "met": valid and ratio >= TARGET_RATIO,
        "valid": valid,
        "server_cpu_us_per_request": {
            "ours": ours_cpu,
            "baseline": base_cpu,
            "ratio": stats.ratio(ours_cpu, base_cpu),
        },
        "settings": {
            **settings.__dict__,
            "server_cpus": sorted(server_cpus) if server_cpus else None,
            "load_cpus": sorted(load_cpus) if load_cpus else None,
        },
        "runs": runs,
        "adapter_log_tail": adapter_log_tail,
    }


# -- in process: the push pipeline without HTTP ------------------------------------------------


def pipeline(runs: int, rounds_per_run: int = 2, pods: int = 1000) -> dict[str, Any]:
    """Per report: ``push.decode_report`` (with the server's ``KnownPods``) + ``Store.apply``
    (ours) against ``msgspec.json.decode`` (baseline: the same JSON library, untyped) of the
    same bodies, alternating per run; CPU microseconds per report."""
    rng = np.random.default_rng(11)
    config = ServerConfig()
    templates = [
        workload.body_template(rng, pod, 1_800_000_000.0)
        for pod in workload.pod_loads(pods, workload.NAMESPACE)
    ]
    store = Store(config.store)
    known = adapter_push.KnownPods(store.max_pods)  # as the server decodes: pods remembered
    now, seq = 1_800_000_000.0, 0
    ours, baseline = [], []
    for _ in range(runs):
        bodies = []
        for _ in range(rounds_per_run):
            seq += 1
            bodies += [head + str(seq).encode() + tail for head, tail in templates]
        started = time.process_time()
        for body in bodies:
            msgspec.json.decode(body)
        baseline.append((time.process_time() - started) / len(bodies) * 1e6)
        started = time.process_time()
        for body in bodies:
            now += 0.001
            if store.apply(adapter_push.decode_report(body, config.push, known), now) is not (
                Applied.ACCEPTED
            ):
                raise RuntimeError("a benchmark push was not applied")
            known.remember_last()
        ours.append((time.process_time() - started) / len(bodies) * 1e6)
    ours_median, base_median = stats.median(ours), stats.median(baseline)
    return {
        "name": "push decode + apply per report (in process)",
        "unit": "us CPU/report",
        "ours": ours_median,
        "baseline": base_median,
        "ratio": stats.ratio(ours_median, base_median),
        "target": "none (reported)",
        "met": None,
        "runs": {"ours": ours, "baseline": baseline},
        "body_bytes": len(bodies[0]),
    }
