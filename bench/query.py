"""Selector query latency: 1,000 pods behind ``app=model``, in process and over HTTPS.

In process (one core): a ``Store`` is filled through the real push decoder
(``encode_report`` -> bytes -> ``push.decode_report`` -> ``Store.apply``), one report per pod per
1 s slice, with ``fill_slices`` seconds of history, default window (30 s) and max age (10 s).
Then, for ``pods`` with selector ``app=model`` in one namespace, three levels are timed with
wall time (``perf_counter``) and CPU time (``process_time``):

- ``provider``: ``await StoreProvider.get_metric_by_selector(...)``;
- ``serialized``: that plus ``adapter.api.custom_value_list`` (the response body's bytes);
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
import bisect
import contextlib
import itertools
import json
import os
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from aiohttp.test_utils import make_mocked_request

from adapter import api, heap, push, selectors, sketch
from adapter import app as adapter_app
from adapter.config import ServerConfig
from adapter.provider import CustomMetricInfo
from adapter.store import Applied, Store
from adapter.store_provider import StoreProvider
from adapter.transport import PushToken
from bench import servers, stats, workload

TARGET_MS = 5.0
TARGET_FRACTION = 0.5
"""Over HTTPS at ``TARGET_FRACTION_PODS`` pods, ours at least half the baseline's throughput."""
TARGET_FRACTION_PODS = 1000
LINEAR_EXPONENT_LIMIT = 1.1
"""The cold query's cost may grow at most like ``pods**1.1`` from the second-largest size to the
largest (``n log n`` over a tenfold step is about 1.13; linear is 1)."""
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
    http_sizes: tuple[int, ...] = (10, 100, 1000, 10000)
    """Pods behind the selector in each HTTPS list scenario (each in its own namespace)."""
    object_pods: int = 1000
    """Pods of the Deployment whose pooled p99 is the HTTPS object scenario (0: none)."""
    http_fill_rounds: int = 1
    """Push rounds of every scenario before the first GET."""
    http_rounds: int = 4
    """Per run and scenario, at most: push every pod over HTTPS, one cold GET, warm GETs."""
    http_pushes_per_run: int = 4000
    """Fewer rounds for large scenarios: ``rounds = http_pushes_per_run // pods``, at least 1."""
    http_warm: int = 25
    """Warm GETs of ours and of the baseline per round, at most ..."""
    http_warm_pods: int = 50_000
    """... and at most ``http_warm_pods // pods`` ..."""
    http_min_warm: int = 3
    """... but at least this many."""
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
            report = push.decode_report(head + seq + tail, self.config.push, self.state.known_pods)
            self.clock.now = start + i / count
            if self.store.apply(report, self.clock.now) is not Applied.ACCEPTED:
                raise RuntimeError("a benchmark push was not applied")
            self.state.known_pods.remember_last()
        self.clock.now = start + 1.0


def _info(metric: str) -> CustomMetricInfo:
    return CustomMetricInfo("pods", True, metric)


Operation = Callable[[], Awaitable[int]]


def answer_bytes(values: Sequence[Any]) -> bytes:
    """The response body of ``values``, as the handler writes it."""
    return api.custom_value_list(VERSION, values)


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
        body = answer_bytes(values)
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
        documents[metric] = json.loads(answer_bytes(values))
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
def pinned(cpus: set[int] | None) -> Iterator[None]:
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
    heap.keep_freed_memory()  # as the adapter process does
    with pinned(cpus):
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
        trade = quantile_view_trade(fleet)
    cases = {}
    for key in per_run[0]:
        pooled = [pair for run in per_run for pair in run[key]]
        cases[key] = {
            **_summary(pooled),
            "run_medians_wall_ms": [
                stats.median([w for w, _ in run[key]]) * 1000 for run in per_run
            ],
        }
    log(
        f"  quantile view: {trade['view_update_us_per_push']:.0f} us a push to keep, saves"
        f" {trade['quantile_step_ms_per_query']:.2f} ms a query; pays from"
        f" {trade['break_even_hpas']:.0f} HPAs asking every {HPA_PERIOD_SECONDS:g} s"
    )
    return {
        "cases": cases,
        "window_bins_per_pod": _window_bins(fleet),
        "quantile_view_trade": trade,
    }


QUANTILES = (0.5, 0.9, 0.95, 0.99)
"""The catalog's latency quantiles: what a view kept at push time would hold per pod."""
HPA_PERIOD_SECONDS = 15.0


def quantile_view_trade(fleet: Fleet, repeats: int = 200) -> dict[str, Any]:
    """Whether a per-pod quantile view kept at push time pays for itself: the CPU a push would
    add to keep its pod's four quantiles current (the cheaper of the store's own per-band
    function and a bare scalar pass), against the CPU a 1,000-pod quantile query spends
    computing them (what the view would save it). Median of ``repeats`` timings each."""
    records = list(fleet.store.pods(workload.NAMESPACE))
    bands = [r.window_band for r in records]
    zeros = [r.window_zero_count for r in records]

    def cpu_of(work: Callable[[], object]) -> float:
        times = []
        for _ in range(repeats):
            started = time.process_time()
            work()
            times.append(time.process_time() - started)
        return stats.median(times)

    low, counts = bands[0]

    def scalar_view() -> list[int]:
        """The least a push could do: one cumulative sum, a binary search per quantile."""
        through = list(itertools.accumulate(counts))
        total = through[-1] + zeros[0]
        return [low + bisect.bisect_left(through, q * total - zeros[0]) for q in QUANTILES]

    one = ([bands[0]], [zeros[0]])
    per_push = min(
        cpu_of(lambda: [sketch.quantile_per_band(*one, q) for q in QUANTILES]),
        cpu_of(scalar_view),
    )
    per_query = cpu_of(lambda: sketch.quantile_per_band(bands, zeros, 0.99))
    pods = len(records)
    # the view costs every pod's pushes (1 a second); it saves the quantile step of each query
    break_even_queries_per_second = pods * per_push / per_query
    return {
        "pods": pods,
        "view_update_us_per_push": per_push * 1e6,
        "quantile_step_ms_per_query": per_query * 1000,
        "break_even_queries_per_second": break_even_queries_per_second,
        "break_even_hpas": break_even_queries_per_second * HPA_PERIOD_SECONDS,
    }


def _window_bins(fleet: Fleet) -> float:
    return stats.median([len(r.latency().indices) for r in fleet.store.pods(workload.NAMESPACE)])


# -- over HTTPS: scenarios against the baseline answering the same bytes ------------------------

HTTP_MAX_AGE_SECONDS = 300
"""``--max-age`` of the adapter process of the HTTPS comparison. One adapter process here takes
about 1,500 pushes/s, so a push round of 10,000 pods lasts several seconds and the pods pushed
first would pass the default 10 s before the GETs end. Freshness changes no query work: every pod
of a scenario pushed within its last round either way."""


@dataclass(frozen=True)
class HttpScenario:
    """One GET of ours, compared with the baseline answering its bytes pre-built."""

    name: str
    pods: int
    """Pods pushed in the scenario's own namespace, again before every cold GET."""
    path: str
    items: int
    """``describedObject``s the answer holds."""
    rounds: int
    """Per run: push every pod, one cold GET, then ``warm`` GETs of ours and of the baseline."""
    warm: int


def _namespace(name: str) -> str:
    return f"bench-{name}"


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def http_scenarios(settings: QuerySettings) -> list[HttpScenario]:
    """The p99 pod list by selector at each size, then the Deployment's pooled p99 over
    ``object_pods`` pods (1,000 sketches merged per query)."""
    base = f"/apis/custom.metrics.k8s.io/{VERSION}/namespaces"

    def shape(pods: int) -> tuple[int, int]:
        rounds = _clamp(settings.http_pushes_per_run // pods, 1, settings.http_rounds)
        warm = _clamp(settings.http_warm_pods // pods, settings.http_min_warm, settings.http_warm)
        return rounds, warm

    scenarios = [
        HttpScenario(
            f"pods-{pods}",
            pods,
            f"{base}/{_namespace(f'pods-{pods}')}/pods/*/{P99}?labelSelector={SELECTOR}",
            pods,
            *shape(pods),
        )
        for pods in settings.http_sizes
    ]
    if settings.object_pods:
        name = f"deployment-{settings.object_pods}"
        scenarios.append(
            HttpScenario(
                name,
                settings.object_pods,
                f"{base}/{_namespace(name)}/deployments.apps/{workload.DEPLOYMENT}/{P99}",
                1,
                *shape(settings.object_pods),
            )
        )
    return scenarios


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


async def _get(session: aiohttp.ClientSession, url: str, items: int) -> tuple[float, bytes]:
    """One GET, timed to the last byte; it must answer 200 with ``items`` objects."""
    started = time.perf_counter()
    async with session.get(url) as response:
        body = await response.read()
    seconds = time.perf_counter() - started
    if response.status != 200:
        raise RuntimeError(f"GET {url} answered {response.status}: {body[:300]!r}")
    if body.count(b'"describedObject"') != items:
        raise RuntimeError(f"GET {url} answered {len(body)} bytes without {items} items")
    return seconds, body


class _HttpRig:
    """Our adapter and the baseline, the session to both, and a seq that only grows."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        ours: servers.Server,
        baseline: servers.Server | None,
        token: str,
        concurrency: int,
    ) -> None:
        self.session = session
        self.ours = ours
        self.baseline = baseline
        self.token = token
        self.concurrency = concurrency
        self.seq = 0

    async def push(self, templates: list[tuple[bytes, bytes]]) -> float:
        """Every pod of ``templates`` reports once; the seconds it took."""
        self.seq += 1
        started = time.perf_counter()
        await _push_all(
            self.session, self.ours.url, self.token, templates, self.seq, self.concurrency
        )
        return time.perf_counter() - started

    async def timed_gets(
        self, server: servers.Server, path: str, items: int, count: int
    ) -> tuple[list[float], float]:
        """``count`` sequential GETs: their wall seconds and the server's CPU per GET."""
        before = servers.cpu_seconds(server.pid)
        walls = [(await _get(self.session, server.url + path, items))[0] for _ in range(count)]
        return walls, (servers.cpu_seconds(server.pid) - before) / count


_TEMPERATURES = ("cold", "warm", "baseline")


async def _scenario_run(
    rig: _HttpRig,
    scenario: HttpScenario,
    templates: list[tuple[bytes, bytes]],
    index: int,
    found: dict[str, Any],
) -> None:
    """One run of a scenario: ``rounds`` x (push all, cold GET, warm GETs alternating)."""
    run: dict[str, list[float]] = {name: [] for name in _TEMPERATURES}
    assert rig.baseline is not None
    for round_ in range(scenario.rounds):
        found["push_seconds"].append(await rig.push(templates))
        walls, cpu = await rig.timed_gets(rig.ours, scenario.path, scenario.items, 1)
        run["cold"] += walls
        found["cpu"]["cold"].append(cpu)
        order = [
            ("warm", rig.ours, scenario.path),
            ("baseline", rig.baseline, f"/static/{scenario.name}"),
        ]
        if (index + round_) % 2:
            order.reverse()  # alternate who goes first, so drift hits both
        for name, server, path in order:
            walls, cpu = await rig.timed_gets(server, path, scenario.items, scenario.warm)
            run[name] += walls
            found["cpu"][name].append(cpu)
    for name, values in run.items():
        found["samples"][name] += values
        found["run_medians_ms"][name].append(stats.median(values) * 1000)


async def _http(
    settings: QuerySettings,
    scenarios: list[HttpScenario],
    tmp: Path,
    server_cpus: set[int] | None,
    log: Callable[[str], Any],
) -> dict[str, Any]:
    cert_dir = tmp / "certs"
    client_cert = servers.prepare_certs(cert_dir)
    extra = ["--max-age", f"{HTTP_MAX_AGE_SECONDS}s"]
    ours = servers.start_adapter(cert_dir, tmp / "adapter.log", extra)
    rig = None
    try:
        if server_cpus:
            servers.pin(ours.pid, server_cpus)
        rss = {"started": servers.rss_bytes(ours.pid)}
        token = (cert_dir / "push-token").read_text().strip()
        rng = np.random.default_rng(5)
        now = time.time()
        templates = {
            s.name: [
                workload.body_template(rng, pod, now)
                for pod in workload.pod_loads(s.pods, _namespace(s.name))
            ]
            for s in scenarios
        }
        context = servers.client_context(cert_dir, client_cert)
        connector = aiohttp.TCPConnector(ssl=context, limit=settings.http_push_concurrency)
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            rig = _HttpRig(session, ours, None, token, settings.http_push_concurrency)
            for _ in range(settings.http_fill_rounds):
                for scenario in scenarios:
                    await rig.push(templates[scenario.name])
            rss["filled"] = servers.rss_bytes(ours.pid)
            bodies, body_bytes = {}, {}
            for scenario in scenarios:  # the bytes the baseline will answer, pre-built
                _, body = await _get(session, ours.url + scenario.path, scenario.items)
                bodies[scenario.name] = tmp / f"{scenario.name}.json"
                bodies[scenario.name].write_bytes(body)
                body_bytes[scenario.name] = len(body)
            rig.baseline = servers.start_baseline(cert_dir, tmp / "baseline.log", bodies)
            if server_cpus:
                servers.pin(rig.baseline.pid, server_cpus)
            found = {
                s.name: {
                    "samples": {name: [] for name in _TEMPERATURES},
                    "run_medians_ms": {name: [] for name in _TEMPERATURES},
                    "cpu": {name: [] for name in _TEMPERATURES},
                    "push_seconds": [],
                }
                for s in scenarios
            }
            for index in range(settings.runs):
                for scenario in scenarios:
                    one = found[scenario.name]
                    await _scenario_run(rig, scenario, templates[scenario.name], index, one)
                    medians = {k: v[-1] for k, v in one["run_medians_ms"].items()}
                    log(
                        f"  https run {index + 1}/{settings.runs} {scenario.name:16s} cold"
                        f" {medians['cold']:7.1f} ms, warm {medians['warm']:7.1f} ms, baseline"
                        f" {medians['baseline']:6.1f} ms (wall, medians; push round"
                        f" {one['push_seconds'][-1]:.1f} s)"
                    )
            rss["end"] = servers.rss_bytes(ours.pid)
    finally:
        ours.stop()
        if rig is not None and rig.baseline is not None:
            rig.baseline.stop()
    return {
        "scenarios": {
            s.name: {
                "pods": s.pods,
                "items": s.items,
                "path": s.path,
                "rounds_per_run": s.rounds,
                "warm_per_round": s.warm,
                "body_bytes": body_bytes[s.name],
                "cases": {
                    name: {
                        **stats.summary_ms(values),
                        "run_medians_ms": found[s.name]["run_medians_ms"][name],
                    }
                    for name, values in found[s.name]["samples"].items()
                },
                "server_cpu_ms_per_request": {
                    name: stats.median(values) * 1000
                    for name, values in found[s.name]["cpu"].items()
                },
                "push_round_seconds": stats.median(found[s.name]["push_seconds"]),
            }
            for s in scenarios
        },
        "adapter_rss_bytes": rss,
        "pods_tracked": sum(s.pods for s in scenarios),
        "adapter_flags": extra,
    }


def over_http(
    settings: QuerySettings, server_cpus: set[int] | None, client_cpus: set[int] | None, log=print
) -> dict[str, Any]:
    """Our adapter process against the baseline process answering the same bytes, for every
    scenario of :func:`http_scenarios`."""
    with tempfile.TemporaryDirectory(prefix="bench-query-") as tmp, pinned(client_cpus):
        return asyncio.run(_http(settings, http_scenarios(settings), Path(tmp), server_cpus, log))


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


def _in_process_entries(local: dict[str, Any]) -> list[dict[str, Any]]:
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
    return entries


def _http_entries(http: dict[str, Any]) -> list[dict[str, Any]]:
    entries = []
    for name, scenario in http["scenarios"].items():
        base = scenario["cases"]["baseline"]
        for temperature in ("cold", "warm"):
            ours = scenario["cases"][temperature]
            fraction = stats.ratio(base["median_ms"], ours["median_ms"])
            judged = scenario["pods"] == TARGET_FRACTION_PODS and temperature == "cold"
            entries.append(
                {
                    "name": f"query {name} over HTTPS {temperature}",
                    "unit": "ms",
                    "ours": ours["median_ms"],
                    "ours_p90": ours["p90_ms"],
                    "baseline": base["median_ms"],
                    "baseline_p90": base["p90_ms"],
                    "ratio": fraction,
                    "ratio_is": "baseline/ours",
                    "ratio_per_run": [
                        stats.ratio(b, o)
                        for o, b in zip(ours["run_medians_ms"], base["run_medians_ms"], strict=True)
                    ],
                    "target": f">= {TARGET_FRACTION:g}" if judged else "none (reported)",
                    "met": fraction >= TARGET_FRACTION if judged else None,
                    "details": scenario,
                }
            )
    entries.append(scaling_entry(http))
    return entries


def scaling_entry(http: dict[str, Any]) -> dict[str, Any]:
    """How the p99 pod list's cost grows with pods: per-pod cost at each size, the marginal cost
    between sizes, a least-squares line and the growth exponent between the two largest sizes."""
    lists = sorted(
        (s for s in http["scenarios"].values() if s["items"] == s["pods"]),
        key=lambda s: s["pods"],
    )
    rows = []
    for scenario in lists:
        pods, cases = scenario["pods"], scenario["cases"]
        row = {"pods": pods, "body_bytes": scenario["body_bytes"]}
        for name in _TEMPERATURES:
            row[f"{name}_ms"] = cases[name]["median_ms"]
            row[f"{name}_us_per_pod"] = cases[name]["median_ms"] / pods * 1000
        row["server_cpu_ms_per_request"] = scenario["server_cpu_ms_per_request"]
        rows.append(row)
    for before, row in itertools.pairwise(rows):
        for name in _TEMPERATURES:
            row[f"{name}_marginal_us_per_pod"] = (
                (row[f"{name}_ms"] - before[f"{name}_ms"]) / (row["pods"] - before["pods"]) * 1000
            )
    growth: dict[str, Any] = {}
    if len(rows) >= 2:
        small, large = rows[-2], rows[-1]
        for name in _TEMPERATURES:
            slope, intercept = stats.linear_fit(
                [r["pods"] for r in rows], [r[f"{name}_ms"] for r in rows]
            )
            growth[name] = {
                "fit_us_per_pod": slope * 1000,
                "fit_fixed_ms": intercept,
                "exponent": stats.growth_exponent(
                    small["pods"], small[f"{name}_ms"], large["pods"], large[f"{name}_ms"]
                ),
            }
    exponent = growth.get("cold", {}).get("exponent", float("nan"))
    return {
        "name": "query p99 pod list over HTTPS, growth with pods (cold)",
        "unit": "exponent",
        "ours": exponent,
        "baseline": growth.get("baseline", {}).get("exponent"),
        "ratio": None,
        "target": f"<= {LINEAR_EXPONENT_LIMIT:g} (linear: 1)",
        "met": exponent <= LINEAR_EXPONENT_LIMIT if rows else None,
        "rows": rows,
        "growth": growth,
        "adapter_rss_bytes": http["adapter_rss_bytes"],
        "pods_tracked": http["pods_tracked"],
        "markdown": scaling_markdown(rows, growth),
    }


def scaling_markdown(rows: list[dict[str, Any]], growth: dict[str, Any]) -> list[str]:
    """The scaling table printed under the main one."""
    lines = [
        "| pods | body bytes | ours cold ms | ours warm ms | baseline ms | fraction cold"
        " | fraction warm | cold us/pod | marginal cold us/pod | warm us/pod"
        " | marginal warm us/pod |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        marginal_cold, marginal_warm = (
            f"{row[key]:.1f}" if key in row else "-"
            for key in ("cold_marginal_us_per_pod", "warm_marginal_us_per_pod")
        )
        lines.append(
            f"| {row['pods']:,} | {row['body_bytes']:,} | {row['cold_ms']:.1f}"
            f" | {row['warm_ms']:.1f} | {row['baseline_ms']:.1f}"
            f" | {stats.ratio(row['baseline_ms'], row['cold_ms']):.2f}"
            f" | {stats.ratio(row['baseline_ms'], row['warm_ms']):.2f}"
            f" | {row['cold_us_per_pod']:.1f} | {marginal_cold}"
            f" | {row['warm_us_per_pod']:.1f} | {marginal_warm} |"
        )
    for name, fit in growth.items():
        lines.append(
            f"{name}: least-squares {fit['fit_us_per_pod']:.1f} us/pod + {fit['fit_fixed_ms']:.1f}"
            f" ms; growth exponent between the two largest sizes {fit['exponent']:.2f}"
        )
    return lines


def summarize(
    settings: QuerySettings,
    local: dict[str, Any],
    http: dict[str, Any],
    server_cpus: set[int] | None,
    client_cpus: set[int] | None,
) -> list[dict[str, Any]]:
    """The result entries: in-process levels, every HTTPS scenario, and the scaling figure."""
    entries = _in_process_entries(local) + _http_entries(http)
    for entry in entries:
        entry["settings"] = {
            **settings.__dict__,
            "server_cpus": sorted(server_cpus) if server_cpus else None,
            "client_cpus": sorted(client_cpus) if client_cpus else None,
            "window_bins_per_pod": local["window_bins_per_pod"],
        }
    trade = local["quantile_view_trade"]
    entries.append(
        {
            "name": "per-pod quantile view kept at push time: HPAs needed to pay for it",
            "unit": "HPAs",
            "ours": trade["break_even_hpas"],
            "baseline": None,
            "ratio": None,
            "target": "report; keep it only below the HPAs a fleet has",
            "met": None,
            "details": trade,
            "markdown": [
                f"A view of each pod's four quantiles kept at push time would cost every push"
                f" {trade['view_update_us_per_push']:.1f} us of CPU and save a 1,000-pod quantile"
                f" query {trade['quantile_step_ms_per_query']:.2f} ms: it pays only above"
                f" {trade['break_even_queries_per_second']:.1f} such queries a second, i.e."
                f" {trade['break_even_hpas']:.0f} HPAs asking every {HPA_PERIOD_SECONDS:g} s"
                " about the same pods (pods push once a second).",
            ],
        }
    )
    return entries
