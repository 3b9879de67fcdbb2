"""Overload: HPA queries while pods push at 70 % and at twice the adapter's push capacity.

One adapter process (``python -m adapter serve ... --max-age 30s``, so that pods that do not
push in the unloaded phase stay served; every other flag at its default, so
``--max-inflight-pushes`` and ``--max-pod-push-rate`` are the shipped ones), pinned to one
CPU; the pods (``bench.storm_pods``) and the HPAs (``bench.hpa_queries``) are separate
processes pinned to the other. Phases, each with its own namespace of ``pods``
pods (one keep-alive TLS connection each, every pod reporting once before the phase starts):

1. *capacity*: ``bench.load`` (32 connections, closed loop, as the push benchmark) measures
   what the adapter takes, C pushes a second;
2. *unloaded*: the HPAs query, the pods do not push;
3. *mixed*: pods push at 0.7 C (open loop) while the HPAs query;
4. *storm, honouring*: pods push at 2 C for ``storm_seconds``, honouring ``Retry-After``;
5. *storm, ignoring*: the same, with pods that push again at their next interval whatever
   they were told.

The HPAs: ``hpas`` clients, each on its own connection, asking in turn the p99 of every pod of
the namespace (``app=model``, a ~250 KB list) and the Deployment's pooled p99, once a
``query_interval`` each. Figures per phase: query latency (p50, p99, max) and its p99 against
the unloaded one, answers by status (every query must be a 200, no push may get a 5xx), pushes
shed, the adapter's RSS (before, peak), the collector's pauses (``adapter_gc_pause_seconds``
from ``/metrics``) and whether the requests add up once the pods drained what they held:
``adapter_reported_requests_total`` over the phase must equal the requests the pods had
acknowledged (nothing lost in the merges, nothing counted twice), with nothing left pending.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from adapter import certs, eventloop
from bench import push, servers, stats

CUSTOM = "/apis/custom.metrics.k8s.io/v1beta2/namespaces"
SELECTOR = "?labelSelector=" + urllib.parse.quote("app=model")
P99_TARGET_SECONDS = 0.025
STORM_P99_FACTOR = 4.0


@dataclass(frozen=True)
class OverloadSettings:
    pods: int = 1000
    hpas: int = 10
    query_interval: float = 1.0
    capacity_seconds: float = 3.0
    unloaded_seconds: float = 10.0
    mixed_seconds: float = 20.0
    storm_seconds: float = 30.0
    pin: bool = True

    # what closed_loop.spawn reads for the capacity run
    runs: int = 1
    concurrency: int = 32
    warmup_seconds: float = 1.0

    @property
    def duration_seconds(self) -> float:
        return self.capacity_seconds


class RssSampler:
    """The adapter's resident memory, sampled every 0.25 s in a thread, with its peak."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            try:
                self.peak = max(self.peak, servers.rss_bytes(self.pid))
            except (OSError, RuntimeError):
                return

    def __enter__(self) -> RssSampler:
        self.peak = servers.rss_bytes(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


async def _get(url: str, context: Any) -> bytes:
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session,
        session.get(url) as response,
    ):
        body = await response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {url} answered {response.status}: {body[:300]!r}")
        return body


def _get_sync(url: str, context: Any) -> bytes:
    return eventloop.run(_get(url, context), eventloop.default())


def gc_pauses(metrics: bytes) -> dict[str, dict[str, float]]:
    """``adapter_gc_pause_seconds`` from a ``/metrics`` text: per generation, the cumulative
    count per bucket bound, the count, the sum and the longest pause."""
    found: dict[str, dict[str, float]] = {}
    for line in metrics.decode().splitlines():
        if not line.startswith("adapter_gc_"):
            continue
        name_labels, value = line.rsplit(" ", 1)
        name, _, labels = name_labels.partition("{")
        fields = dict(part.split("=") for part in labels.rstrip("}").split(",") if part)
        generation = fields.get("generation", '""').strip('"')
        entry = found.setdefault(generation, {})
        key = {
            "adapter_gc_pause_seconds_bucket": f"le {fields.get('le', '').strip(chr(34))}",
            "adapter_gc_pause_seconds_count": "count",
            "adapter_gc_pause_seconds_sum": "sum",
            "adapter_gc_pause_max_seconds": "max",
            "adapter_gc_cpu_seconds_total": "cpu",
        }.get(name)
        if key is not None:
            entry[key] = float(value)
    return found


def _pause_delta(before: dict, after: dict) -> dict[str, dict[str, float]]:
    return {
        generation: {
            key: value - (before.get(generation, {}).get(key, 0.0) if key != "max" else 0.0)
            for key, value in entry.items()
        }
        for generation, entry in after.items()
    }


def _queries_summary(result: dict[str, Any]) -> dict[str, Any]:
    seconds = [s for values in result["seconds"].values() for s in values]
    statuses: dict[str, int] = {}
    for counts in result["statuses"].values():
        for status, count in counts.items():
            statuses[status] = statuses.get(status, 0) + count
    return {
        "count": len(seconds),
        "p50_ms": stats.percentile(seconds, 50) * 1000 if seconds else None,
        "p99_ms": stats.percentile(seconds, 99) * 1000 if seconds else None,
        "max_ms": max(seconds) * 1000 if seconds else None,
        "by_path_p99_ms": {
            path: stats.percentile(values, 99) * 1000 for path, values in result["seconds"].items()
        },
        "statuses": statuses,
        "errors": result["errors"],
        "all_200": set(statuses) == {"200"} and not result["errors"],
    }


def reported_requests(metrics: bytes) -> int:
    """``adapter_reported_requests_total`` from a ``/metrics`` text."""
    for line in metrics.decode().splitlines():
        if line.startswith("adapter_reported_requests_total "):
            return round(float(line.split()[1]))
    raise RuntimeError("no adapter_reported_requests_total in /metrics")


def _counts_add_up(storm: dict[str, Any], applied: int) -> dict[str, Any]:
    """The requests the adapter applied in the phase against those the pods had acknowledged:
    equal when nothing was lost or counted twice; and nothing left pending."""
    acknowledged = sum(storm["delivered"])
    return {
        "applied": applied,
        "acknowledged": acknowledged,
        "pending": storm["pending"],
        "ok": applied == acknowledged and not storm["pending"],
    }


def run(settings: OverloadSettings, log: Callable[[str], Any] = print) -> dict[str, Any]:
    server_cpus, load_cpus = push.cpu_plan(settings.pin)
    with tempfile.TemporaryDirectory(prefix="bench-overload-") as tmp:
        cert_dir = Path(tmp) / "certs"
        client_cert = servers.prepare_certs(cert_dir)
        ours = servers.start_adapter(cert_dir, Path(tmp) / "adapter.log", ["--max-age", "30s"])
        try:
            if server_cpus:
                servers.pin(ours.pid, server_cpus)
            context = servers.client_context(cert_dir, client_cert)
            capacity_run = push.run_load(
                ours, cert_dir, settings, 0, push.ACCEPTED, load_cpus, settings.capacity_seconds
            )
            capacity = capacity_run["requests_per_second"]
            log(f"  overload: capacity {capacity:.0f} pushes/s (closed loop, 32 connections)")
            phases = [
                ("unloaded", 0.0, True, settings.unloaded_seconds),
                ("mixed 70%", 0.7 * capacity, True, settings.mixed_seconds),
                ("storm 2x, honouring Retry-After", 2 * capacity, True, settings.storm_seconds),
                ("storm 2x, ignoring Retry-After", 2 * capacity, False, settings.storm_seconds),
            ]
            results = []
            for index, (name, offered, honour, seconds) in enumerate(phases):
                namespace = f"overload-{index}"
                result = _phase(
                    ours,
                    cert_dir,
                    client_cert,
                    context,
                    settings,
                    load_cpus,
                    namespace,
                    offered,
                    honour,
                    seconds,
                    Path(tmp),
                )
                result.update(name=name, offered_per_second=offered)
                results.append(result)
                q = result["queries"]
                log(
                    f"  overload {name}: offered {offered:.0f}/s, pushes {result['push_statuses']},"
                    f" queries p50 {q['p50_ms']:.1f} ms p99 {q['p99_ms']:.1f} ms max"
                    f" {q['max_ms']:.1f} ms ({q['count']}), RSS peak"
                    f" {result['rss_peak_bytes'] / 2**20:.0f} MiB, counts"
                    f" {'add up' if result['counts']['ok'] else 'DO NOT add up'}"
                )
        finally:
            ours.stop()
        log_tail = (Path(tmp) / "adapter.log").read_bytes()[-2000:].decode(errors="replace")
    return summarize(capacity, results, server_cpus, load_cpus, log_tail)


def _phase(
    ours: servers.Server,
    cert_dir: Path,
    client_cert: tuple[Path, Path],
    context: Any,
    settings: OverloadSettings,
    load_cpus: set[int] | None,
    namespace: str,
    offered: float,
    honour: bool,
    seconds: float,
    tmp: Path,
) -> dict[str, Any]:
    ready = tmp / f"{namespace}.ready"
    applied_before = reported_requests(_get_sync(ours.url + "/metrics", context))
    cpu_args = [arg for cpu in sorted(load_cpus or ()) for arg in ("--cpu", str(cpu))]
    pods_argv = [
        sys.executable,
        "-m",
        "bench.storm_pods",
        "--url",
        ours.url,
        "--ca-file",
        str(cert_dir / certs.CA_CERT_FILE),
        "--token-file",
        str(cert_dir / "push-token"),
        "--namespace",
        namespace,
        "--pods",
        str(settings.pods),
        "--rate",
        str(max(offered, 0.001) / settings.pods),
        "--seconds",
        str(seconds),
        "--ready-file",
        str(ready),
        *cpu_args,
    ]
    if honour:
        pods_argv.append("--honour-retry-after")
    pods = subprocess.Popen(pods_argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not ready.exists():
        if pods.poll() is not None or time.monotonic() > deadline:
            pods.kill()
            raise RuntimeError(f"storm_pods did not start: {pods.communicate()[1][-2000:]!r}")
        time.sleep(0.05)
    pauses_before = gc_pauses(_get_sync(ours.url + "/metrics", context))
    paths = [
        f"{CUSTOM}/{namespace}/pods/*/inference_latency_p99_seconds{SELECTOR}",
        f"{CUSTOM}/{namespace}/deployments.apps/model/inference_latency_p99_seconds",
    ]
    query_argv = [
        sys.executable,
        "-m",
        "bench.hpa_queries",
        "--url",
        ours.url,
        "--ca-file",
        str(cert_dir / certs.CA_CERT_FILE),
        "--client-cert",
        str(client_cert[0]),
        "--client-key",
        str(client_cert[1]),
        "--hpas",
        str(settings.hpas),
        "--interval",
        str(settings.query_interval),
        "--seconds",
        str(seconds),
        *cpu_args,
    ]
    for path in paths:
        query_argv += ["--path", path]
    cpu_before = servers.cpu_seconds(ours.pid)
    with RssSampler(ours.pid) as rss:
        rss_before = rss.peak
        queries = subprocess.run(
            query_argv, capture_output=True, timeout=seconds + 120, check=False
        )
        storm_out, storm_err = pods.communicate(timeout=seconds + 180)
    server_cpu = servers.cpu_seconds(ours.pid) - cpu_before
    if queries.returncode or pods.returncode:
        raise RuntimeError(
            f"a load process failed: {queries.stderr[-1500:]!r} {storm_err[-1500:]!r}"
        )
    storm = json.loads(storm_out)
    metrics = _get_sync(ours.url + "/metrics", context)
    pauses_after = gc_pauses(metrics)
    applied = reported_requests(metrics) - applied_before
    return {
        "namespace": namespace,
        "seconds": seconds,
        "queries": _queries_summary(json.loads(queries.stdout)),
        "push_statuses": storm["statuses"].get("load", {}),
        "push_drain_statuses": storm["statuses"].get("drain", {}),
        "sheds_without_retry_after": storm["sheds_without_retry_after"],
        "push_errors": storm["errors"],
        "pending_after_drain": storm["pending"],
        "client_cpu_utilisation": storm["client_cpu_utilisation"],
        "server_cpu_utilisation": server_cpu / seconds,
        "rss_before_bytes": rss_before,
        "rss_peak_bytes": rss.peak,
        "gc_pauses": _pause_delta(pauses_before, pauses_after),
        "counts": _counts_add_up(storm, applied),
    }


def summarize(
    capacity: float,
    phases: list[dict[str, Any]],
    server_cpus: set[int] | None,
    load_cpus: set[int] | None,
    log_tail: str,
) -> dict[str, Any]:
    unloaded_p99 = phases[0]["queries"]["p99_ms"]
    mixed, storms = phases[1], phases[2:]
    no_5xx = all(not any(status.startswith("5") for status in p["push_statuses"]) for p in phases)
    storm_ok = all(
        p["queries"]["all_200"]
        and p["queries"]["p99_ms"] <= STORM_P99_FACTOR * unloaded_p99
        and p["counts"]["ok"]
        for p in storms
    )
    return {
        "name": "overload: HPA queries while pods push at 70 % and 2x capacity",
        "unit": "ms (query p99)",
        "ours": mixed["queries"]["p99_ms"],
        "baseline": unloaded_p99,
        "ratio": None,
        "target": f"p99 < {P99_TARGET_SECONDS * 1000:g} ms at 70 %; at 2x every query answers,"
        f" p99 <= {STORM_P99_FACTOR:g}x unloaded, no 5xx, counts add up",
        "met": mixed["queries"]["p99_ms"] < P99_TARGET_SECONDS * 1000 and storm_ok and no_5xx,
        "capacity_per_second": capacity,
        "phases": phases,
        "settings": {
            "server_cpus": sorted(server_cpus) if server_cpus else None,
            "load_cpus": sorted(load_cpus) if load_cpus else None,
        },
        "markdown": markdown(capacity, phases),
        "adapter_log_tail": log_tail,
    }


def _pauses_text(pauses: dict[str, dict[str, float]]) -> str:
    parts = []
    for generation, entry in sorted(pauses.items()):
        if entry.get("count"):
            parts.append(
                f"gen {generation}: {entry['count']:.0f}, sum {entry['sum'] * 1000:.0f} ms"
                f" (CPU {entry.get('cpu', 0) * 1000:.0f}), longest {entry['max'] * 1000:.1f} ms"
            )
    return "; ".join(parts) or "none"


def markdown(capacity: float, phases: list[dict[str, Any]]) -> list[str]:
    lines = [
        f"Push capacity (closed loop, 32 connections): {capacity:,.0f}/s.",
        "",
        "| phase | pushes offered/s | push answers | queries p50 / p99 / max ms"
        " | p99 vs unloaded | server CPU | RSS before → peak MiB"
        " | GC pauses (count, total wall (CPU), longest wall) | counts add up |",
        "|---|---:|---|---|---:|---:|---|---|---|",
    ]
    unloaded = phases[0]["queries"]["p99_ms"]
    for phase in phases:
        q, counts = phase["queries"], phase["counts"]
        lines.append(
            f"| {phase['name']} | {phase['offered_per_second']:,.0f} | {phase['push_statuses']}"
            f" | {q['p50_ms']:.1f} / {q['p99_ms']:.1f} / {q['max_ms']:.1f} ({q['count']},"
            f" {q['statuses']}) | {q['p99_ms'] / unloaded:.1f}x"
            f" | {phase['server_cpu_utilisation']:.0%}"
            f" | {phase['rss_before_bytes'] / 2**20:.0f} → {phase['rss_peak_bytes'] / 2**20:.0f}"
            f" | {_pauses_text(phase['gc_pauses'])}"
            f" | {'yes' if counts['ok'] else 'no'} ({counts['applied']:,} applied,"
            f" {counts['acknowledged']:,} acknowledged, {counts['pending']} pending)"
            f" |"
        )
    return lines
