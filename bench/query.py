"""Selector query latency: 1,000 pods behind ``app=model``, in process and over HTTPS.

In process (one core): a ``Store`` is filled through the real push decoder
(``encode_report`` -> bytes -> ``push.decode_report`` -> ``Store.apply``), one report per pod per
1 s slice, with ``fill_slices`` seconds of history, default window (30 s) and max age (10 s).
Then, for ``pods`` with selector ``app=model`` in one namespace, three levels are timed with
wall time (``perf_counter``) and CPU time (``process_time``):

- ``provider``: ``await StoreProvider.get_metric_by_selector(...)``;
- ``serialized``: that plus ``adapter.api.custom_value_list`` and ``json.dumps`` (the body);
- ``handler``: the real ``adapter.app.get_custom_metric`` on a mocked request (path and selector
  parsing, provider, served-age telemetry, serialization; no middlewares, no socket).

*Cold* is the first query after every pod pushed again (each push drops the pod's cached sketch),
which is what the HPA sees every 15 s; *warm* is the same query repeated. The baseline is
``json.dumps`` of the very same answer document: the floor any Python server pays to send it.
Target: the cold query under 5 ms of one core.

Over HTTPS, our adapter process (filled by real pushes) answers ``GET /apis/custom.metrics.k8s.io/
v1beta2/namespaces/inference/pods/*/inference_latency_p99_seconds?labelSelector=app=model`` and the
baseline process answers the same bytes, pre-built; one keep-alive connection with a
client certificate, sequential requests, runs alternating.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from aiohttp.test_utils import make_mocked_request

from adapter import api, push, selectors
from adapter import app as adapter_app
from adapter.config import ServerConfig
from adapter.provider import CustomMetricInfo
from adapter.store import Applied, Store
from adapter.store_provider import StoreProvider
from adapter.transport import PushToken
from bench import servers, stats, workload

TARGET_MS = 5.0
SELECTOR = "app=model"
QUEUE_DEPTH = "inference_queue_depth"
P99 = "inference_latency_p99_seconds"
VERSION = "v1beta2"
VARIANTS_PER_POD = 4
"""Distinct report bodies per pod (seq aside), cycled, so slices differ from one another."""


@dataclass(frozen=True)
class QuerySettings:
    runs: int = 5
    pods: int = 1000
    fill_slices: int = 30
    cold_iterations: int = 10
    """Per run and case: each is one push round of every pod, then one timed query."""
    warm_iterations: int = 10
    """Per cold iteration and case: the same query again, caches warm."""
    http_rounds: int = 4
    """Per run: push every pod over HTTPS, one cold GET, then ``http_warm`` warm GETs."""
    http_warm: int = 25
    http_push_concurrency: int = 32
    pin: bool = True


def _path(metric: str) -> str:
    return f"/apis/custom.metrics.k8s.io/{VERSION}/namespaces/{workload.NAMESPACE}/pods/*/{metric}"


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Fleet:
    """A store fed by ``pods`` pods through the real push decoder, on a clock moved by hand."""

    def __init__(self, pods: int, seed: int = 3) -> None:
        rng = np.random.default_rng(seed)
        self.clock = _Clock(1_800_000_000.0)
        self.config = ServerConfig()
        self.store = Store(self.config.store)
        self.provider = StoreProvider(self.store, self.clock)
        loads = workload.pod_loads(pods, workload.NAMESPACE)
        self.templates = [
            [workload.body_template(rng, pod, self.clock.now) for _ in range(VARIANTS_PER_POD)]
            for pod in loads
        ]
        self.seq = 0
        self.state = adapter_app.AdapterState(
            config=self.config,
            store=self.store,
            provider=self.provider,
            push_token=PushToken("bench"),
            clock=self.clock,
        )
        self.app = adapter_app.make_app(self.state)

    def push_round(self) -> None:
        """One report from every pod, spread over the next second of the clock."""
        self.seq += 1
        start, count = self.clock.now, len(self.templates)
        seq = str(self.seq).encode()
        for i, variants in enumerate(self.templates):
            head, tail = variants[self.seq % VARIANTS_PER_POD]
            report = push.decode_report(head + seq + tail, self.config.push)
            self.clock.now = start + i / count
            if self.store.apply(report, self.clock.now) is not Applied.ACCEPTED:
                raise RuntimeError("a benchmark push was not applied")
        self.clock.now = start + 1.0


def _info(metric: str) -> CustomMetricInfo:
    return CustomMetricInfo("pods", True, metric)


Operation = Callable[[], Awaitable[int]]


def query_levels(fleet: Fleet, metric: str) -> dict[str, Callable[[], Operation]]:
    """For each level, a factory that prepares (untimed) one operation to time; an operation
    returns how many items it produced."""
    info, selector = _info(metric), selectors.parse(SELECTOR)

    async def provider() -> int:
        values = await fleet.provider.get_metric_by_selector(
            info, workload.NAMESPACE, selector, selectors.EVERYTHING
        )
        return len(values)

    async def serialized() -> int:
        values = await fleet.provider.get_metric_by_selector(
            info, workload.NAMESPACE, selector, selectors.EVERYTHING
        )
        body = json.dumps(api.custom_value_list(VERSION, values), separators=(",", ":")).encode()
        return len(values) if body else 0

    def handler() -> Operation:
        # The mocked request is built outside the timed span: it is harness, not adapter.
        request = make_mocked_request(
            "GET",
            f"{_path(metric)}?labelSelector={SELECTOR}",
            match_info={"version": VERSION, "tail": _path(metric).split(f"{VERSION}/", 1)[1]},
            app=fleet.app,
        )

        async def operation() -> int:
            response = await adapter_app.get_custom_metric(request)
            if response.status != 200:
                raise RuntimeError(f"handler answered {response.status}")
            return response.body.count(b'"describedObject"')

        return operation

    return {"provider": lambda: provider, "serialized": lambda: serialized, "handler": handler}


async def _timed(prepare: Callable[[], Operation], expect: int) -> tuple[float, float]:
    operation = prepare()
    wall, cpu = time.perf_counter(), time.process_time()
    produced = await operation()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if produced != expect:
        raise RuntimeError(f"a query produced {produced} items, not {expect}")
    return wall, cpu


CASES = (
    (P99, "provider"),
    (P99, "serialized"),
    (P99, "handler"),
    (QUEUE_DEPTH, "provider"),
    (QUEUE_DEPTH, "serialized"),
    (QUEUE_DEPTH, "handler"),
)


async def _in_process_run(fleet: Fleet, settings: QuerySettings, samples: dict) -> None:
    levels = {metric: query_levels(fleet, metric) for metric in (P99, QUEUE_DEPTH)}
    documents = {}
    for metric in (P99, QUEUE_DEPTH):
        values = await fleet.provider.get_metric_by_selector(
            _info(metric), workload.NAMESPACE, selectors.parse(SELECTOR), selectors.EVERYTHING
        )
        documents[metric] = api.custom_value_list(VERSION, values)
    for _ in range(settings.cold_iterations):
        for metric, level in CASES:
            fleet.push_round()  # every pod pushed again: caches invalid
            key = f"{metric} {level}"
            samples.setdefault(f"{key} cold", []).append(
                await _timed(levels[metric][level], settings.pods)
            )
            for _ in range(settings.warm_iterations):
                samples.setdefault(f"{key} warm", []).append(
                    await _timed(levels[metric][level], settings.pods)
                )
        for metric in (P99, QUEUE_DEPTH):  # the baseline, alternating with ours
            for _ in range(settings.warm_iterations):
                wall, cpu = time.perf_counter(), time.process_time()
                json.dumps(documents[metric], separators=(",", ":")).encode()
                samples.setdefault(f"{metric} baseline", []).append(
                    (time.perf_counter() - wall, time.process_time() - cpu)
                )


@contextlib.contextmanager
def _pinned(cpus: set[int] | None) -> Iterator[None]:
    before = os.sched_getaffinity(0)
    if cpus:
        os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _summary(pairs: list[tuple[float, float]]) -> dict[str, Any]:
    walls, cpus = [p[0] for p in pairs], [p[1] for p in pairs]
    return {
        "wall": stats.summary_ms(walls),
        "cpu": stats.summary_ms(cpus),
    }


def in_process(settings: QuerySettings, cpus: set[int] | None, log=print) -> dict[str, Any]:
    """The in-process selector queries; per case median/p90 of wall and CPU time."""
    with _pinned(cpus):
        fleet = Fleet(settings.pods)
        for _ in range(settings.fill_slices):
            fleet.push_round()
        per_run: list[dict[str, list[tuple[float, float]]]] = []
        for index in range(settings.runs):
            samples: dict[str, list[tuple[float, float]]] = {}
            asyncio.run(_in_process_run(fleet, settings, samples))
            per_run.append(samples)
            medians = {
                key: stats.median([w for w, _ in samples[f"{P99} {key}"]]) * 1000
                for key in ("handler cold", "handler warm", "baseline")
            }
            log(
                f"  query run {index + 1}/{settings.runs}: p99 handler cold"
                f" {medians['handler cold']:.2f} ms, warm {medians['handler warm']:.2f} ms,"
                f" baseline {medians['baseline']:.2f} ms (wall, medians)"
            )
    cases = {}
    for key in per_run[0]:
        pooled = [pair for run in per_run for pair in run[key]]
        cases[key] = {
            **_summary(pooled),
            "run_medians_wall_ms": [
                stats.median([w for w, _ in run[key]]) * 1000 for run in per_run
            ],
        }
    return {"cases": cases, "window_bins_per_pod": _window_bins(fleet)}


def _window_bins(fleet: Fleet) -> float:
    return stats.median([len(r.latency().indices) for r in fleet.store.pods(workload.NAMESPACE)])


# -- over HTTPS --------------------------------------------------------------------------------


async def _push_all(
    session: aiohttp.ClientSession,
    url: str,
    token: str,
    templates: list[tuple[bytes, bytes]],
    seq: int,
    concurrency: int,
) -> None:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    queue = list(range(len(templates)))
    seq_bytes = str(seq).encode()

    async def worker() -> None:
        while queue:
            head, tail = templates[queue.pop()]
            async with session.post(
                f"{url}/push/v1", data=head + seq_bytes + tail, headers=headers
            ) as response:
                answer = await response.read()
            if response.status != 200 or answer != b'{"accepted":true}':
                raise RuntimeError(f"push answered {response.status}: {answer[:200]!r}")

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _get(session: aiohttp.ClientSession, url: str) -> tuple[float, bytes]:
    started = time.perf_counter()
    async with session.get(url) as response:
        body = await response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {url} answered {response.status}: {body[:300]!r}")
    return time.perf_counter() - started, body


async def _http(settings: QuerySettings, tmp: Path, server_cpus, log) -> dict[str, Any]:
    cert_dir = tmp / "certs"
    client_cert = servers.prepare_certs(cert_dir)
    ours = servers.start_adapter(cert_dir, tmp / "adapter.log")
    baseline = None
    try:
        if server_cpus:
            servers.pin(ours.pid, server_cpus)
        token = (cert_dir / "push-token").read_text().strip()
        rng = np.random.default_rng(5)
        now = time.time()
        templates = [
            workload.body_template(rng, pod, now)
            for pod in workload.pod_loads(settings.pods, workload.NAMESPACE)
        ]
        query = f"{_path(P99)}?labelSelector={SELECTOR}"
        context = servers.client_context(cert_dir, client_cert)
        connector = aiohttp.TCPConnector(ssl=context, limit=settings.http_push_concurrency)
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            seq = 0
            for _ in range(3):  # a few slices of history
                seq += 1
                await _push_all(
                    session, ours.url, token, templates, seq, settings.http_push_concurrency
                )
                await asyncio.sleep(0.3)
            _, body = await _get(session, f"{ours.url}{query}")
            items = len(json.loads(body)["items"])
            if items != settings.pods:
                raise RuntimeError(f"our answer has {items} items, not {settings.pods}")
            (tmp / "body.json").write_bytes(body)
            baseline = servers.start_baseline(cert_dir, tmp / "baseline.log", tmp / "body.json")
            if server_cpus:
                servers.pin(baseline.pid, server_cpus)
            samples: dict[str, list[float]] = {"cold": [], "warm": [], "baseline": []}
            cpu: dict[str, list[float]] = {"warm": [], "baseline": []}
            run_medians: dict[str, list[float]] = {"cold": [], "warm": [], "baseline": []}
            for index in range(settings.runs):
                run: dict[str, list[float]] = {"cold": [], "warm": [], "baseline": []}
                for round_ in range(settings.http_rounds):
                    seq += 1
                    await _push_all(
                        session, ours.url, token, templates, seq, settings.http_push_concurrency
                    )
                    seconds, body = await _get(session, f"{ours.url}{query}")
                    run["cold"].append(seconds)
                    order = [("warm", ours, query), ("baseline", baseline, "/static")]
                    if (index + round_) % 2:
                        order.reverse()
                    for name, server, path in order:
                        before = servers.cpu_seconds(server.pid)
                        for _ in range(settings.http_warm):
                            seconds, answer = await _get(session, f"{server.url}{path}")
                            run[name].append(seconds)
                        cpu[name].append(
                            (servers.cpu_seconds(server.pid) - before) / settings.http_warm
                        )
                        if len(answer) < len(body) // 2:
                            raise RuntimeError(f"{name} answered only {len(answer)} bytes")
                for name, values in run.items():
                    samples[name] += values
                    run_medians[name].append(stats.median(values) * 1000)
                log(
                    f"  http run {index + 1}/{settings.runs}: cold"
                    f" {run_medians['cold'][-1]:.1f} ms, warm {run_medians['warm'][-1]:.1f} ms,"
                    f" baseline {run_medians['baseline'][-1]:.1f} ms (wall, medians)"
                )
    finally:
        ours.stop()
        if baseline is not None:
            baseline.stop()
    return {
        "body_bytes": len(body),
        "cases": {
            name: {**stats.summary_ms(values), "run_medians_ms": run_medians[name]}
            for name, values in samples.items()
        },
        "server_cpu_ms_per_request": {
            name: stats.median(values) * 1000 for name, values in cpu.items()
        },
    }


def over_http(
    settings: QuerySettings, server_cpus: set[int] | None, client_cpus: set[int] | None, log=print
) -> dict[str, Any]:
    """Our adapter process against the baseline process answering the same bytes."""
    with tempfile.TemporaryDirectory(prefix="bench-query-") as tmp, _pinned(client_cpus):
        return asyncio.run(_http(settings, Path(tmp), server_cpus, log))


def cpu_plan(pin: bool) -> tuple[set[int] | None, set[int] | None]:
    """(server CPUs, client CPUs) as in ``bench.push``."""
    allowed = sorted(os.sched_getaffinity(0))
    if not pin or len(allowed) < 2:
        return None, None
    return {allowed[0]}, {allowed[-1]}


def run(settings: QuerySettings, log=print) -> list[dict[str, Any]]:
    """Every query figure, as result entries."""
    server_cpus, client_cpus = cpu_plan(settings.pin)
    local = in_process(settings, client_cpus, log)
    http = over_http(settings, server_cpus, client_cpus, log)
    return summarize(settings, local, http, server_cpus, client_cpus)


def summarize(settings, local, http, server_cpus, client_cpus) -> list[dict[str, Any]]:
    entries = []
    cases = local["cases"]
    for metric in (P99, QUEUE_DEPTH):
        base = cases[f"{metric} baseline"]
        for level in ("provider", "serialized", "handler"):
            for temperature in ("cold", "warm"):
                case = cases[f"{metric} {level} {temperature}"]
                ours_cpu = case["cpu"]["median_ms"]
                entries.append(
                    {
                        "name": f"query {metric} {level} {temperature} (in process)",
                        "unit": "ms",
                        "ours": case["wall"]["median_ms"],
                        "ours_p90": case["wall"]["p90_ms"],
                        "ours_cpu": ours_cpu,
                        "ours_cpu_p90": case["cpu"]["p90_ms"],
                        "baseline": base["wall"]["median_ms"],
                        "baseline_cpu": base["cpu"]["median_ms"],
                        "ratio": stats.ratio(case["wall"]["median_ms"], base["wall"]["median_ms"]),
                        "target": f"CPU < {TARGET_MS:g} ms",
                        "met": ours_cpu < TARGET_MS,
                        "details": case,
                        "baseline_details": base,
                    }
                )
    http_cases = http["cases"]
    for temperature in ("cold", "warm"):
        ours = http_cases[temperature]
        base = http_cases["baseline"]
        entries.append(
            {
                "name": f"query {P99} over HTTPS {temperature}",
                "unit": "ms",
                "ours": ours["median_ms"],
                "ours_p90": ours["p90_ms"],
                "baseline": base["median_ms"],
                "baseline_p90": base["p90_ms"],
                "ratio": stats.ratio(ours["median_ms"], base["median_ms"]),
                "target": "none (reported)",
                "met": None,
                "details": {
                    "ours": ours,
                    "baseline": base,
                    "body_bytes": http["body_bytes"],
                    "server_cpu_ms_per_request": http["server_cpu_ms_per_request"],
                },
            }
        )
    for entry in entries:
        entry["settings"] = {
            **settings.__dict__,
            "server_cpus": sorted(server_cpus) if server_cpus else None,
            "client_cpus": sorted(client_cpus) if client_cpus else None,
            "window_bins_per_pod": local["window_bins_per_pod"],
        }
    return entries
