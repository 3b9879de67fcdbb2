"""The ``prometheus`` group: pushes and Prometheus side by side, on the same pods and one step.

Freshness and accuracy. One ``bench.stepping_pods`` process runs ``pods`` pods that push with the
real client to a push-mode adapter and export the same latencies as the model server does
(``/metrics/<pod>``) to two real Prometheus servers, scraping every 1 s and every 15 s; a
Prometheus-mode adapter reads each. All adapters run at their defaults (30 s window). After a
steady ``steady_seconds`` every pod's latency steps from ~50 ms to ~400 ms at the same instant.
This process asks the three adapters for the Deployment's pooled p99 every ``poll_seconds`` (as
an HPA would, over HTTPS) and notes when each first crosses half-way between the two levels:
freshness = that answer's arrival - the step. Each run is one step, at a random phase of the
scrape intervals; figures are medians of the runs, with the slowest. Accuracy: in the last
seconds before the step (windows full of the steady traffic), each
served p99 against ``numpy.quantile(0.99)`` of the very requests of the 30 s before it (every
observation is logged by the pods).

Query time. ``bench.fleet_exporter`` serves 1,000 and 10,000 pods' series (two Deployments) to a
Prometheus scraping every 5 s; once it holds a window's samples, a Prometheus-mode adapter is
asked over HTTPS for the Deployment's pooled p99 and for every pod's p99 and queue depth. The
baseline is the engine's own time for the same queries, sent straight to Prometheus at once.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from adapter import kube, resources, selectors
from adapter.catalog import Signal
from adapter.prometheus import PrometheusClient, PrometheusProvider, Queries, SeriesLabels, promql
from adapter.prometheus.presets import MODEL_SERVER
from adapter.prometheus.provider import NAMES_PER_QUERY
from adapter.prometheus.sources import Gauge, Histogram
from adapter.provider import CustomMetricInfo
from adapter.quantity import parse_quantity
from bench import servers, stats, stepping_pods
from bench.freshness import AFTER_SECONDS, BEFORE_SECONDS
from localcluster import prometheus
from localcluster.ports import free_port

SIGMA = stepping_pods.SIGMA
Z99 = 2.3263478740408408
"""The standard normal's 0.99 quantile: a lognormal's p99 is its median * exp(sigma * Z99)."""
WINDOW_SECONDS = 30.0
"""The adapters' default ``--window``."""
PATHS = ("push", "prometheus 1s scrape", "prometheus 15s scrape")


@dataclass(frozen=True)
class PrometheusSettings:
    runs: int = 3
    pods: int = 10
    rate: float = 100.0
    """Requests per second per pod."""
    steady_seconds: float = 34.0
    hold_seconds: float = 22.0
    """After the step: long enough for a 15 s scrape, its rate window and a poll."""
    poll_seconds: float = 0.1
    accuracy_seconds: float = 4.0
    """The span before the step whose polls are compared with the exact p99."""
    query_sizes: tuple[int, ...] = (1_000, 10_000)
    query_repeats: int = 5
    exporter_scrape_seconds: float = 10.0
    """11,000 pods' exposition takes seconds to render here: scrapes far enough apart."""


def threshold_seconds() -> float:
    """Half-way between the pooled p99 before and after the step."""
    return (BEFORE_SECONDS + AFTER_SECONDS) / 2 * np.exp(SIGMA * Z99)


def _distinct_port(taken: set[int]) -> int:
    """A free port not among ``taken`` (chosen but not yet bound), added to it."""
    while (port := free_port()) in taken:
        pass
    taken.add(port)
    return port


class _Rig:
    """The adapters, the Prometheus servers and the files they share.

    Ports are chosen before their servers bind them, so each is kept distinct from the others
    chosen and bound so far (a port freed by ``free_port`` may come back).
    """

    def __init__(self, directory: Path, binary: str, pods: int) -> None:
        self.directory = directory
        self.binary = binary
        self.pods = pods
        self.cert_dir = directory / "certs"
        self.client_cert = servers.prepare_certs(self.cert_dir)
        self.adapters: list[servers.Server] = []
        self.engines: list[prometheus.PrometheusServer] = []
        self.metrics_port = 0

    def start(self) -> None:
        taken: set[int] = set()
        engine_ports = [_distinct_port(taken) for _ in (1.0, 15.0)]
        self.adapters.append(servers.start_adapter(self.cert_dir, self.directory / "push.log"))
        for port, name in zip(engine_ports, ("1s", "15s"), strict=True):
            self.adapters.append(
                servers.start_adapter(
                    self.cert_dir,
                    self.directory / f"pulled-{name}.log",
                    ["--source=prometheus", f"--prometheus-url=http://127.0.0.1:{port}"],
                )
            )
        taken |= {int(a.url.rsplit(":", 1)[1]) for a in self.adapters}
        self.metrics_port = _distinct_port(taken)
        targets = [
            prometheus.Target(
                f"127.0.0.1:{self.metrics_port}",
                {
                    "__metrics_path__": f"/metrics/fresh-{index:02d}",
                    "namespace": stepping_pods.NAMESPACE,
                    "pod": f"fresh-{index:02d}",
                    "deployment": "fresh",
                    "app": "fresh",
                },
            )
            for index in range(self.pods)
        ]
        for interval, port in zip((1.0, 15.0), engine_ports, strict=True):
            home = self.directory / f"prometheus-{interval:g}s"
            home.mkdir()
            engine = prometheus.PrometheusServer(self.binary, home, targets, interval, port)
            self.engines.append(engine)
            engine.start()

    def stop(self) -> None:
        for adapter in self.adapters:
            adapter.stop()
        for engine in self.engines:
            engine.stop()


async def _poll(
    session: aiohttp.ClientSession,
    url: str,
    every: float,
    seen: list[tuple[float, float]],
    done: asyncio.Event,
) -> None:
    """(arrival time, served p99) of every 200 answer until ``done``."""
    while not done.is_set():
        async with session.get(url) as response:
            body = await response.read()
        if response.status == 200:
            (item,) = json.loads(body)["items"]
            seen.append((time.time(), float(parse_quantity(item["value"]))))
        await asyncio.sleep(every)


async def _one_step(
    rig: _Rig, settings: PrometheusSettings, samples_file: Path
) -> tuple[float, list[list[tuple[float, float]]]]:
    """Run the stepping pods once while polling the three adapters; (step, polls per path)."""
    path = (
        f"/apis/custom.metrics.k8s.io/v1beta2/namespaces/{stepping_pods.NAMESPACE}"
        "/deployments.apps/fresh/inference_latency_p99_seconds"
    )
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.stepping_pods",
        f"--url={rig.adapters[0].url}",
        f"--ca-file={rig.cert_dir / 'ca.crt'}",
        f"--token-file={rig.cert_dir / 'push-token'}",
        f"--pods={settings.pods}",
        f"--rate={settings.rate}",
        f"--before={BEFORE_SECONDS}",
        f"--after={AFTER_SECONDS}",
        f"--steady-seconds={settings.steady_seconds}",
        "--step-spread=0",
        f"--hold-seconds={settings.hold_seconds}",
        f"--metrics-port={rig.metrics_port}",
        f"--samples-out={samples_file}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    polls: list[list[tuple[float, float]]] = [[] for _ in rig.adapters]
    done = asyncio.Event()
    context = servers.client_context(rig.cert_dir, rig.client_cert)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=context), timeout=aiohttp.ClientTimeout(total=10)
    ) as session:
        pollers = [
            asyncio.create_task(_poll(session, a.url + path, settings.poll_seconds, seen, done))
            for a, seen in zip(rig.adapters, polls, strict=True)
        ]
        limit = settings.steady_seconds + settings.hold_seconds + 60
        try:
            out, err = await asyncio.wait_for(child.communicate(), limit)
        finally:
            done.set()
            if child.returncode is None:
                child.kill()
            await asyncio.gather(*pollers)
    if child.returncode != 0:
        raise RuntimeError(f"bench.stepping_pods failed: {err.decode()[-2000:]}")
    steps = {json.loads(line)["step_unix"] for line in out.decode().splitlines()}
    return min(steps), polls


def _exact_p99(samples: np.ndarray, at: float) -> float:
    """``numpy.quantile(0.99)`` of the observations of the window before ``at``."""
    inside = samples[(samples[:, 0] > at - WINDOW_SECONDS) & (samples[:, 0] <= at)]
    return float(np.quantile(inside[:, 1], 0.99))


def analyse_step(
    step: float, polls: list[tuple[float, float]], samples: np.ndarray, accuracy_seconds: float
) -> dict[str, Any]:
    """One path's freshness and p99 error in one run."""
    threshold = threshold_seconds()
    crossed = next((t for t, v in polls if t >= step and v >= threshold), None)
    errors = [
        abs(value / _exact_p99(samples, at) - 1)
        for at, value in polls
        if step - accuracy_seconds <= at < step
    ]
    return {
        "freshness_seconds": None if crossed is None else crossed - step,
        "p99_error": stats.median(errors) if errors else None,
        "polls": len(polls),
    }


def freshness_and_accuracy(
    settings: PrometheusSettings, binary: str, log: Callable[[str], Any]
) -> list[dict[str, Any]]:
    trials: list[list[dict[str, Any]]] = [[] for _ in PATHS]
    with tempfile.TemporaryDirectory(prefix="bench-prometheus-") as tmp:
        rig = _Rig(Path(tmp), binary, settings.pods)
        try:
            rig.start()
            rng = random.Random()
            for run in range(settings.runs):
                # Runs last about a multiple of 15 s: without this the step would meet the
                # 15 s scrapes at nearly the same phase every run.
                time.sleep(rng.uniform(0, 15))
                samples_file = Path(tmp) / f"samples-{run}.npy"
                step, polls = asyncio.run(_one_step(rig, settings, samples_file))
                samples = np.load(samples_file)
                for index, (name, seen) in enumerate(zip(PATHS, polls, strict=True)):
                    result = analyse_step(step, seen, samples, settings.accuracy_seconds)
                    trials[index].append(result)
                    log(f"  run {run + 1} {name}: {result}")
        finally:
            rig.stop()
    return [
        entry
        for name, runs in zip(PATHS, trials, strict=True)
        for entry in _step_entries(name, runs, settings)
    ]


def _step_entries(name: str, runs: list[dict[str, Any]], settings: PrometheusSettings) -> list:
    """The path's freshness (median of the runs) and p99 error (median of the runs' medians)."""
    delays = [r["freshness_seconds"] for r in runs if r["freshness_seconds"] is not None]
    errors = [100 * r["p99_error"] for r in runs if r["p99_error"] is not None]
    common = {"baseline": None, "ratio": None, "met": None, "settings": asdict(settings)}
    return [
        {
            "name": f"prometheus group, {name}: latency step to p99 half-way",
            "unit": "s",
            "ours": stats.median(delays) if delays else None,
            "ours_p90": max(delays) if delays else None,
            "target": "-",
            "runs": runs,
            **common,
        },
        {
            "name": f"prometheus group, {name}: p99 error vs numpy.quantile",
            "unit": "%",
            "ours": stats.median(errors) if errors else None,
            "target": "-",
            **common,
        },
    ]


async def _timed(session: aiohttp.ClientSession, urls: list[str], repeats: int) -> list[float]:
    """Wall seconds of fetching every URL at once, ``repeats`` times (after one warm-up)."""
    times = []
    for attempt in range(repeats + 1):
        started = time.perf_counter()
        answers = await asyncio.gather(*(session.get(u) for u in urls))
        for answer in answers:
            await answer.read()
            if answer.status != 200:
                raise RuntimeError(f"{answer.url}: {answer.status} {await answer.text()}")
        if attempt:
            times.append(time.perf_counter() - started)
    return times


def _engine_urls(engine_url: str, queries: list[str]) -> list[str]:
    return [f"{engine_url}/api/v1/query?{urllib.parse.urlencode({'query': q})}" for q in queries]


def _engine_queries(
    deployment: str, per_pod: bool, quantile: bool, window_seconds: float
) -> list[str]:
    """The instant queries the Prometheus-mode adapter sends for one request."""
    queries = Queries(SeriesLabels(), window_seconds, window_seconds, 60.0)
    scope = (promql.equals("namespace", deployment), promql.equals("deployment", deployment))
    latency = MODEL_SERVER.inputs[Signal.LATENCY]
    depth = MODEL_SERVER.inputs[Signal.QUEUE_DEPTH]
    assert isinstance(latency, Histogram) and isinstance(depth, Gauge)
    by = queries.per_pod if per_pod else ()
    if quantile and per_pod:
        values = [queries.quantile(latency, 0.99, scope, by)]
    elif quantile:
        values = [queries.buckets(latency, scope, by, fresh_only=True)]
    else:
        values = queries.gauge(depth, scope, by, fresh_only=True)
    source = latency if quantile else depth
    return [*values, queries.newest_sample(source, scope, by)]


async def _query_times(
    adapter: servers.Server,
    engine: prometheus.PrometheusServer,
    cert_dir: Path,
    client_cert: tuple[Path, Path],
    settings: PrometheusSettings,
    log: Callable[[str], Any],
) -> list[dict[str, Any]]:
    entries = []
    context = servers.client_context(cert_dir, client_cert)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=context), timeout=aiohttp.ClientTimeout(total=300)
    ) as session:
        for size in settings.query_sizes:
            deployment = f"q{size // 1000}k"
            base = f"{adapter.url}/apis/custom.metrics.k8s.io/v1beta2/namespaces/{deployment}"
            for what, path, per_pod, quantile in (
                (
                    "Deployment pooled p99",
                    f"/deployments.apps/{deployment}/inference_latency_p99_seconds",
                    False,
                    True,
                ),
                (
                    "every pod's p99",
                    f"/pods/*/inference_latency_p99_seconds?labelSelector=app%3D{deployment}",
                    True,
                    True,
                ),
                (
                    "every pod's queue depth",
                    f"/pods/*/inference_queue_depth?labelSelector=app%3D{deployment}",
                    True,
                    False,
                ),
            ):
                ours = await _timed(session, [base + path], settings.query_repeats)
                window = 3 * settings.exporter_scrape_seconds
                queries = _engine_queries(deployment, per_pod, quantile, window)
                direct = _engine_urls(engine.url, queries)
                engine_times = await _timed(session, direct, settings.query_repeats)
                entries.append(
                    {
                        "name": f"prometheus group, query {size:,} pods: {what}",
                        "unit": "ms",
                        "ours": stats.median(ours) * 1000,
                        "ours_p90": stats.percentile(ours, 90) * 1000,
                        "baseline": stats.median(engine_times) * 1000,
                        "ratio": stats.ratio(stats.median(ours), stats.median(engine_times)),
                        "ratio_is": "ours/engine alone",
                        "target": "-",
                        "met": None,
                    }
                )
                log(
                    f"  {entries[-1]['name']}: {entries[-1]['ours']:.0f} ms,"
                    f" engine {entries[-1]['baseline']:.0f} ms"
                )
    return entries


def _fleet_view(sizes: tuple[int, ...]) -> kube.ClusterView:
    """The exporter's pods as the informers would list them: Deployment ``q<n>k`` (selector
    ``app=q<n>k``) owning its pods through a ReplicaSet, in namespace ``q<n>k``."""
    view = kube.ClusterView()
    pods, replica_sets, deployments = [], [], []
    for size in sizes:
        name = f"q{size // 1000}k"

        def owned(kind: str, owner: str) -> list[dict[str, Any]]:
            return [{"kind": kind, "name": owner, "controller": True}]

        replica_sets.append(
            {
                "metadata": {
                    "namespace": name,
                    "name": f"{name}-rs",
                    "ownerReferences": owned("Deployment", name),
                }
            }
        )
        deployments.append(
            {
                "metadata": {"namespace": name, "name": name},
                "spec": {"selector": {"matchLabels": {"app": name}}},
            }
        )
        pods += [
            {
                "metadata": {
                    "namespace": name,
                    "name": f"{name}-{index:05d}",
                    "uid": f"{name}-{index}",
                    "labels": {"app": name},
                    "ownerReferences": owned("ReplicaSet", f"{name}-rs"),
                }
            }
            for index in range(size)
        ]
    for kind, objects in (
        (kube.PODS, pods),
        (kube.REPLICA_SETS, replica_sets),
        (kube.DEPLOYMENTS, deployments),
        (kube.SERVICES, []),
    ):
        view.deliver(kind)(kube.SYNC, objects)
    return view


async def _split_times(
    engine: prometheus.PrometheusServer, settings: PrometheusSettings, log: Callable[[str], Any]
) -> list[dict[str, Any]]:
    """Cluster mode in process: a Deployment's pooled p99 from its informer pods, asked in parts
    of 100 pod names and pooled in the adapter, against the one label-matcher query."""
    window = 3 * settings.exporter_scrape_seconds
    queries = Queries(SeriesLabels(), window, window, 60.0)
    info = CustomMetricInfo(
        resources.DEPLOYMENTS.group_resource, True, "inference_latency_p99_seconds"
    )
    entries = []
    async with PrometheusClient(engine.url, 300.0) as client:
        split = PrometheusProvider(client, queries, view=_fleet_view(settings.query_sizes))
        labelled = PrometheusProvider(client, queries)
        for size in settings.query_sizes:
            name = f"q{size // 1000}k"
            timings: dict[str, list[float]] = {"split": [], "labelled": []}
            for attempt in range(settings.query_repeats + 1):
                for kind, provider in (("split", split), ("labelled", labelled)):
                    started = time.perf_counter()
                    await provider.get_metric_by_name(info, name, name, selectors.EVERYTHING)
                    if attempt:
                        timings[kind].append(time.perf_counter() - started)
            ours, base = stats.median(timings["split"]), stats.median(timings["labelled"])
            entries.append(
                {
                    "name": f"prometheus group, query {size:,} pods: pooled p99, cluster mode"
                    f" ({math.ceil(size / NAMES_PER_QUERY)} parts), in process",
                    "unit": "ms",
                    "ours": ours * 1000,
                    "ours_p90": stats.percentile(timings["split"], 90) * 1000,
                    "baseline": base * 1000,
                    "ratio": stats.ratio(ours, base),
                    "ratio_is": "split/one label-matcher query",
                    "target": "-",
                    "met": None,
                }
            )
            log(f"  {entries[-1]['name']}: {ours * 1000:.0f} ms, one query {base * 1000:.0f} ms")
    return entries


def query_time(
    settings: PrometheusSettings, binary: str, log: Callable[[str], Any]
) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="bench-prometheus-query-") as tmp:
        directory = Path(tmp)
        cert_dir = directory / "certs"
        client_cert = servers.prepare_certs(cert_dir)
        port = free_port()
        argv = [sys.executable, "-m", "bench.fleet_exporter", f"--port={port}"]
        argv += [f"--deployment=q{size // 1000}k={size}" for size in settings.query_sizes]
        with (directory / "exporter.log").open("wb") as exporter_log:
            exporter = subprocess.Popen(argv, stdout=exporter_log, stderr=exporter_log)
        engine = prometheus.PrometheusServer(
            binary,
            directory,
            [prometheus.Target(f"127.0.0.1:{port}")],
            settings.exporter_scrape_seconds,
            honor_labels=True,
        )
        adapter = None
        try:
            engine.start()
            adapter = servers.start_adapter(
                cert_dir,
                directory / "adapter.log",
                # The engine's own time for 10,000 pods passes the default 5 s here.
                [
                    "--source=prometheus",
                    f"--prometheus-url={engine.url}",
                    "--prometheus-timeout=2m",
                    f"--window={3 * settings.exporter_scrape_seconds:g}s",
                    f"--prometheus-gauge-window={3 * settings.exporter_scrape_seconds:g}s",
                ],
            )
            log(f"  filling Prometheus with {sum(settings.query_sizes):,} pods' series")
            pods = sum(settings.query_sizes)
            engine.wait_for(
                "count(count_over_time(inference_queue_depth[1h]) >= 3)",
                lambda found: bool(found) and float(found[0]["value"][1]) >= pods,
                timeout_seconds=180,
            )
            entries = asyncio.run(
                _query_times(adapter, engine, cert_dir, client_cert, settings, log)
            )
            return entries + asyncio.run(_split_times(engine, settings, log))
        finally:
            if adapter is not None:
                adapter.stop()
            engine.stop()
            exporter.terminate()
            exporter.wait()


def run(settings: PrometheusSettings, log: Callable[[str], Any] = print) -> list[dict[str, Any]]:
    binary = prometheus.ensure_installed(log)
    entries = freshness_and_accuracy(settings, binary, log)
    entries += query_time(settings, binary, log)
    return entries
