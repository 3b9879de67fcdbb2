"""``model-server loadgen``: an open-loop load generator for KServe v2 model servers.

Role: the I/O shell around ``model_server.profiles``. The profile gives the arrival times of a
Poisson process; this module sends one inference request at each of them and measures what
comes back. Arrivals never wait for earlier requests (open loop): a scheduler task sleeps until
each arrival and spawns a request task, so an overloaded server shows up as growing latency,
shedding and timeouts, the way real traffic shows it, instead of a politely slower client. The
one cap is ``--concurrency-limit``: an arrival that finds that many requests outstanding is
counted as error ``client_concurrency_limit`` and dropped, not delayed (delaying it would close
the loop).

Wire protocol (KServe v2 / Open Inference Protocol): ``GET {url}/v2/models/{name}`` once for
the input tensors' names, datatypes and shapes (a ``-1`` first dimension is the batch, sent as
1), then ``POST {url}/v2/models/{name}/infer`` with one fixed JSON body built from them. With
``--api completions`` (OpenAI, for language-model servers such as ``model-server --mimic vllm``)
it sends ``POST {url}/v1/completions`` instead, cycling through a few bodies whose prompt
lengths are drawn from a lognormal around ``--prompt-tokens`` words, each asking for
``--max-tokens``. Status 200 is ok; anything else is error kind ``http_<status>``
(``http_503`` is a server shedding load); ``timeout`` and ``connection`` are the transport's
failures. With several ``--url``s the requests are spread round-robin or to the target with the
fewest outstanding requests, like a Kubernetes Service with those balancing policies.

What the report means (``LoadReport``, printed live to stderr and at the end to stdout):

- ``sent`` counts every arrival, including those refused by the local concurrency limit, so
  ``sent == ok + sum(errors)``; ``achieved_rps`` is ``sent`` over the sending window (from the
  start to ``--duration``, or to the last arrival when ``--max-requests`` ended the run first).
- Latency is measured from the moment the request task starts sending to the last byte of the
  answer, over ok requests only.
- Lateness is how long after its scheduled time each request actually started. An open-loop
  generator that cannot keep up (a saturated CPU, a blocked event loop) sends a different, more
  bursty process than asked; the report says so (``behind_schedule``) instead of hiding it.

Every time flag takes Go-style durations (``500ms``, ``5s``, ``1m``) via ``adapter.durations``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import secrets
import signal
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, NoReturn, TextIO
from urllib.parse import urlsplit

import aiohttp
import numpy as np

from adapter import durations
from model_server import profiles

__all__ = [
    "Balancer",
    "LatencySummary",
    "LatenessSummary",
    "LoadConfig",
    "LoadError",
    "LoadReport",
    "ModelInput",
    "build_parser",
    "classify_status",
    "completion_bodies",
    "format_summary",
    "infer_body",
    "main",
    "parse_metadata",
    "run_load",
    "summarize_latencies",
    "summarize_lateness",
]

logger = logging.getLogger(__name__)

Policy = Literal["round-robin", "least-outstanding"]
POLICIES: Final[tuple[Policy, ...]] = ("round-robin", "least-outstanding")
Api = Literal["v2", "completions"]
APIS: Final[tuple[Api, ...]] = ("v2", "completions")
COMPLETION_BODIES: Final = 32
"""Distinct completions bodies built per run (prompt lengths vary; encoding stays off the loop)."""

BEHIND_P99_LATENESS_SECONDS: Final = 0.02
"""Above this p99 lateness the run did not offer the process asked for. 20 ms is several
times the event loop's normal timer slack (about 1 ms) yet below typical model service times,
so crossing it means the generator, not the server, shaped the traffic."""

CLIENT_CONCURRENCY_LIMIT: Final = "client_concurrency_limit"
TIMEOUT: Final = "timeout"
CONNECTION: Final = "connection"
PROTOCOL: Final = "protocol"
CANCELLED: Final = "cancelled"
"""Error kinds that are not HTTP statuses. ``protocol`` is a broken answer (bad framing,
truncated body); ``cancelled`` is a request still outstanding when the drain time ran out or
the run was interrupted."""

_MAX_SLEEP_SECONDS: Final = 0.1
"""The scheduler never sleeps longer than this, so an interrupt is noticed promptly even when
the next arrival is far away."""

_DRAIN_GRACE_SECONDS: Final = 0.5
"""Extra wait after ``--timeout`` for outstanding requests: each has its own timeout, so they
end by then unless the event loop itself is swamped."""

_JSON_HEADERS: Final = {"Content-Type": "application/json"}

_FLOAT_TYPES: Final = frozenset({"FP16", "FP32", "FP64", "BF16"})
_INT_TYPES: Final = frozenset(
    {"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
)


class LoadError(Exception):
    """The run cannot start (no target answers the metadata request, or answers nonsense)."""


@dataclass(frozen=True)
class LoadConfig:
    """Everything one run needs; built from flags by ``main`` or directly by tests."""

    urls: tuple[str, ...]
    """Model server base URLs (``http://127.0.0.1:8080``), without a trailing slash."""
    model_name: str
    """The KServe v2 model name in ``/v2/models/{model_name}``."""
    profile: profiles.RateProfile
    """Requests per second over time (see ``model_server.profiles``)."""
    duration_seconds: float
    """Arrivals happen in ``[0, duration_seconds)``; then the run drains and ends."""
    seed: int
    """Seeds the arrival times and the request payload, so a run can be repeated exactly."""
    max_requests: int | None = None
    """Stop after this many arrivals even if time is left; None means only time bounds it."""
    concurrency_limit: int = 1000
    """Most requests outstanding at once; more arrivals are counted as refused, not delayed.
    Also the connection pool size, so no request waits for a connection inside aiohttp."""
    balance: Policy = "round-robin"
    """How arrivals are spread over ``urls``."""
    timeout_seconds: float = 5.0
    """Per request (connect to last byte), and the bound on the final drain."""
    report_interval_seconds: float = 1.0
    """Seconds between live lines; 0 disables them."""
    input_size: int | None = None
    """If set, skip the metadata request and send one FP32 input ``input`` of shape
    ``[1, input_size]`` (for servers whose metadata cannot be fetched)."""
    slo_seconds: float | None = None
    """A latency objective: the report then counts the ok requests slower than it."""
    api: Api = "v2"
    """``v2`` (KServe infer) or ``completions`` (OpenAI ``/v1/completions``)."""
    prompt_tokens: int = 200
    """Completions: the median prompt length, in words."""
    max_tokens: int = 128
    """Completions: ``max_tokens`` of every request."""


# --- wire format (pure) -----------------------------------------------------------------------


@dataclass(frozen=True)
class ModelInput:
    """One input tensor of the model, with the batch dimension already fixed to 1."""

    name: str
    datatype: str
    shape: tuple[int, ...]


def parse_metadata(metadata: object) -> tuple[ModelInput, ...]:
    """The inputs of a KServe v2 model metadata answer, ready to build a request from.

    A ``-1`` first dimension is the batch and becomes 1; a ``-1`` anywhere else cannot be
    guessed. Raises ``LoadError`` (one line) for a body without a usable ``inputs`` list, other
    variable dimensions, and datatypes we cannot make data for.

    Example: ``{"inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]}`` gives
    ``(ModelInput("input", "FP32", (1, 4)),)``.
    """
    if not isinstance(metadata, dict) or not isinstance(metadata.get("inputs"), list):
        raise LoadError("model metadata has no 'inputs' list")
    inputs = []
    for position, tensor in enumerate(metadata["inputs"]):
        if not isinstance(tensor, dict):
            raise LoadError(f"model metadata input {position} is not an object")
        name, datatype, shape = tensor.get("name"), tensor.get("datatype"), tensor.get("shape")
        if not isinstance(name, str) or not isinstance(datatype, str):
            raise LoadError(f"model metadata input {position} lacks a name or datatype")
        if not isinstance(shape, list) or not all(
            isinstance(dim, int) and not isinstance(dim, bool) for dim in shape
        ):
            raise LoadError(f"model input {name!r} has no integer shape")
        if datatype not in _FLOAT_TYPES | _INT_TYPES | {"BOOL"}:
            raise LoadError(f"model input {name!r} has datatype {datatype!r}, which is unsupported")
        fixed = [1 if (index == 0 and dim == -1) else dim for index, dim in enumerate(shape)]
        if any(dim < 0 for dim in fixed):
            raise LoadError(
                f"model input {name!r} has variable dimensions {shape}; pass --input-size"
            )
        inputs.append(ModelInput(name, datatype, tuple(fixed)))
    if not inputs:
        raise LoadError("model metadata lists no inputs")
    return tuple(inputs)


def infer_body(inputs: Sequence[ModelInput], rng: np.random.Generator) -> bytes:
    """The JSON body of an infer request carrying random data of the right shape and type.

    Built once per run and sent with every request: encoding JSON per request would cost the
    generator CPU that it needs for keeping the schedule.
    """
    tensors = []
    for tensor in inputs:
        count = math.prod(tensor.shape)
        data: list[Any]
        if tensor.datatype in _FLOAT_TYPES:
            data = np.round(rng.random(count), 4).tolist()
        elif tensor.datatype in _INT_TYPES:
            data = rng.integers(0, 10, count).tolist()
        else:
            data = (rng.random(count) < 0.5).tolist()
        tensors.append(
            {
                "name": tensor.name,
                "shape": list(tensor.shape),
                "datatype": tensor.datatype,
                "data": data,
            }
        )
    return json.dumps({"inputs": tensors}, separators=(",", ":")).encode()


def completion_bodies(
    model_name: str, rng: np.random.Generator, *, count: int, prompt_tokens: int, max_tokens: int
) -> list[bytes]:
    """``count`` OpenAI completions bodies with lognormal prompt lengths (median
    ``prompt_tokens`` words, sigma 0.8), each asking for ``max_tokens``."""
    lengths = np.maximum(1, np.round(prompt_tokens * np.exp(rng.normal(0.0, 0.8, count))))
    return [
        json.dumps(
            {"model": model_name, "prompt": " ".join(["word"] * int(n)), "max_tokens": max_tokens},
            separators=(",", ":"),
        ).encode()
        for n in lengths
    ]


def classify_status(status: int) -> str | None:
    """None for 200 (ok), else the error kind ``http_<status>`` (``http_503``, ``http_429``)."""
    return None if status == 200 else f"http_{status}"


# --- statistics (pure) ------------------------------------------------------------------------


@dataclass(frozen=True)
class LatencySummary:
    """Latency of ok requests, in seconds (numpy's linear-interpolation percentiles)."""

    mean: float
    p50: float
    p90: float
    p99: float
    max: float


@dataclass(frozen=True)
class LatenessSummary:
    """How late requests started relative to their schedule, in seconds."""

    p50: float
    p99: float
    max: float

    @property
    def behind(self) -> bool:
        """Whether the generator failed to keep the schedule (see ``BEHIND_...``)."""
        return self.p99 > BEHIND_P99_LATENESS_SECONDS


def summarize_latencies(seconds: Sequence[float] | np.ndarray) -> LatencySummary | None:
    """Mean, p50, p90, p99 and max of ``seconds``; None when there are none."""
    values = np.asarray(seconds, dtype=np.float64)
    if values.size == 0:
        return None
    p50, p90, p99 = np.percentile(values, [50, 90, 99]).tolist()
    return LatencySummary(float(values.mean()), p50, p90, p99, float(values.max()))


def summarize_lateness(seconds: Sequence[float] | np.ndarray) -> LatenessSummary:
    """p50, p99 and max lateness; all 0 when nothing was sent (nothing was late)."""
    values = np.asarray(seconds, dtype=np.float64)
    if values.size == 0:
        return LatenessSummary(0.0, 0.0, 0.0)
    p50, p99 = np.percentile(values, [50, 99]).tolist()
    return LatenessSummary(p50, p99, float(values.max()))


# --- balancing (pure) -------------------------------------------------------------------------


class Balancer:
    """Picks a target for each request and tracks how many are outstanding at each.

    ``round-robin`` cycles through the targets whatever their state; ``least-outstanding``
    picks a target with the fewest outstanding requests, breaking ties round-robin so equal
    targets still share the load. Not thread-safe; one event loop uses it.
    """

    def __init__(self, targets: int, policy: Policy) -> None:
        if targets < 1:
            raise ValueError("a balancer needs at least one target")
        if policy not in POLICIES:
            raise ValueError(f"unknown balancing policy {policy!r}")
        self.policy: Policy = policy
        self.outstanding = [0] * targets
        self.total_outstanding = 0
        self._cursor = 0

    def acquire(self) -> int:
        """Choose a target for a new request and count it as outstanding there."""
        targets = len(self.outstanding)
        if self.policy == "round-robin":
            chosen = self._cursor
        else:
            order = [(self._cursor + step) % targets for step in range(targets)]
            chosen = min(order, key=self.outstanding.__getitem__)
        self._cursor = (chosen + 1) % targets
        self.outstanding[chosen] += 1
        self.total_outstanding += 1
        return chosen

    def release(self, target: int) -> None:
        """A request to ``target`` has finished, one way or another."""
        self.outstanding[target] -= 1
        self.total_outstanding -= 1


# --- the report -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetCount:
    """What one target got: requests sent there and how many of them were ok."""

    url: str
    sent: int
    ok: int


@dataclass(frozen=True)
class LoadReport:
    """The outcome of one run. ``to_json`` is what ``--json`` prints."""

    sent: int
    """Arrivals, including those refused by the local concurrency limit."""
    ok: int
    errors: Mapping[str, int]
    """Error kind -> count: ``http_<status>``, ``timeout``, ``connection``, ``protocol``,
    ``client_concurrency_limit``, ``cancelled``."""
    window_seconds: float
    """The sending window: start to ``--duration``, or to the last arrival if the count bound
    ended the run first, or to the interrupt."""
    elapsed_seconds: float
    """The whole run including the drain."""
    target_rps: float
    """The profile's mean rate over the sending window."""
    latency: LatencySummary | None
    """Over ok requests; None when there were none."""
    lateness: LatenessSummary
    max_outstanding: int
    targets: tuple[TargetCount, ...]
    seed: int
    over_slo: int | None = None
    """Ok requests slower than ``--slo`` (None without one)."""

    @property
    def slo_violation_share(self) -> float | None:
        """Share of all requests that missed the objective: too slow, or not served at all."""
        if self.over_slo is None or self.sent == 0:
            return None
        return (self.over_slo + self.sent - self.ok) / self.sent

    @property
    def achieved_rps(self) -> float:
        return self.sent / self.window_seconds if self.window_seconds > 0 else 0.0

    @property
    def ok_rps(self) -> float:
        return self.ok / self.window_seconds if self.window_seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        """The report as one JSON-ready object (latency fields are null without ok requests)."""
        latency = self.latency
        return {
            "sent": self.sent,
            "ok": self.ok,
            "errors": dict(sorted(self.errors.items())),
            "achieved_rps": self.achieved_rps,
            "latency_seconds": {
                "mean": latency.mean if latency else None,
                "p50": latency.p50 if latency else None,
                "p90": latency.p90 if latency else None,
                "p99": latency.p99 if latency else None,
                "max": latency.max if latency else None,
            },
            "target_rps": self.target_rps,
            "ok_rps": self.ok_rps,
            "window_seconds": self.window_seconds,
            "elapsed_seconds": self.elapsed_seconds,
            "lateness_seconds": {
                "p50": self.lateness.p50,
                "p99": self.lateness.p99,
                "max": self.lateness.max,
            },
            "behind_schedule": self.lateness.behind,
            "over_slo": self.over_slo,
            "slo_violation_share": self.slo_violation_share,
            "max_outstanding": self.max_outstanding,
            "targets": [{"url": t.url, "sent": t.sent, "ok": t.ok} for t in self.targets],
            "seed": self.seed,
        }


def format_summary(report: LoadReport) -> str:
    """The human-readable end-of-run summary (several lines, no trailing newline)."""
    lines = [
        f"sent {report.sent} in {report.window_seconds:.2f}s: {report.achieved_rps:.1f} req/s "
        f"(target {report.target_rps:.1f} req/s), ok {report.ok} ({report.ok_rps:.1f}/s)",
        "errors: " + (_format_errors(report.errors) or "none"),
    ]
    if report.latency is None:
        lines.append("latency: no ok requests")
    else:
        latency = report.latency
        lines.append(
            f"latency: mean {_ms(latency.mean)} p50 {_ms(latency.p50)} p90 {_ms(latency.p90)} "
            f"p99 {_ms(latency.p99)} max {_ms(latency.max)}"
        )
    lateness = report.lateness
    lines.append(
        f"schedule lateness: p50 {_ms(lateness.p50)} p99 {_ms(lateness.p99)} "
        f"max {_ms(lateness.max)}; max outstanding {report.max_outstanding}"
    )
    if len(report.targets) > 1:
        lines.append(
            "targets: " + ", ".join(f"{t.url} sent {t.sent} ok {t.ok}" for t in report.targets)
        )
    if lateness.behind:
        lines.append(
            f"WARNING: the generator fell behind its schedule (p99 lateness {_ms(lateness.p99)}"
            f" > {_ms(BEHIND_P99_LATENESS_SECONDS)}): it could not offer this rate as an open "
            "loop, so the traffic sent was burstier than a Poisson process"
        )
    return "\n".join(lines)


def _format_errors(errors: Mapping[str, int]) -> str:
    return " ".join(f"{kind}={count}" for kind, count in sorted(errors.items()))


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}ms"


# --- the run (I/O) ----------------------------------------------------------------------------


async def run_load(
    config: LoadConfig,
    *,
    stop: asyncio.Event | None = None,
    live: TextIO | None = None,
) -> LoadReport:
    """Run the load described by ``config`` and report what happened.

    ``stop``, when set, ends the sending early (an interrupt); the run still drains and
    reports. ``live`` receives a line every ``report_interval_seconds`` (None: no live lines).

    Raises ``LoadError`` when no target answers the metadata request usefully (unless
    ``config.input_size`` makes it unnecessary). Failures of individual requests are never
    raised; they are counted by kind.
    """
    stop = asyncio.Event() if stop is None else stop
    arrival_rng, payload_rng = np.random.default_rng(config.seed).spawn(2)
    arrivals = profiles.arrival_times(
        config.profile, config.duration_seconds, arrival_rng, config.max_requests
    )
    connector = aiohttp.TCPConnector(limit=config.concurrency_limit, limit_per_host=0)
    timeout = aiohttp.ClientTimeout(total=config.timeout_seconds)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        if config.api == "completions":
            bodies = completion_bodies(
                config.model_name,
                payload_rng,
                count=COMPLETION_BODIES,
                prompt_tokens=config.prompt_tokens,
                max_tokens=config.max_tokens,
            )
        elif config.input_size is not None:
            input_ = ModelInput("input", "FP32", (1, config.input_size))
            bodies = [infer_body((input_,), payload_rng)]
        else:
            bodies = [infer_body(await _fetch_inputs(session, config), payload_rng)]
        run = _Run(session, config, bodies)
        reporter = None
        if live is not None and config.report_interval_seconds > 0:
            reporter = asyncio.create_task(run.report_live(live))
        try:
            window = await run.schedule(arrivals, stop)
            await run.drain()
        finally:
            if reporter is not None:
                reporter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reporter
        report = run.report(window)
    if report.lateness.behind:
        logger.warning(
            "fell behind the schedule: p99 lateness %s; the rate is more than this generator "
            "can offer as an open loop",
            _ms(report.lateness.p99),
        )
    return report


async def _fetch_inputs(
    session: aiohttp.ClientSession, config: LoadConfig
) -> tuple[ModelInput, ...]:
    """The model's inputs, from the first target whose metadata request succeeds."""
    failures = []
    for url in config.urls:
        metadata_url = f"{url}/v2/models/{config.model_name}"
        try:
            async with session.get(metadata_url) as response:
                if response.status != 200:
                    failures.append(f"GET {metadata_url} answered HTTP {response.status}")
                    continue
                metadata = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            failures.append(f"GET {metadata_url} failed: {_describe(error)}")
            continue
        return parse_metadata(metadata)
    raise LoadError(
        f"cannot fetch the model metadata: {failures[0]}"
        + (f" (and {len(failures) - 1} more)" if len(failures) > 1 else "")
        + "; check --url and --model-name, or pass --input-size"
    )


class _Run:
    """One run in progress: the open loop, its request tasks and their tallies.

    The event loop is the only writer, so plain counters suffice. Every request task is kept in
    ``_tasks`` until it ends, and ``drain`` awaits or cancels all of them: nothing outlives the
    run.
    """

    def __init__(
        self, session: aiohttp.ClientSession, config: LoadConfig, bodies: Sequence[bytes]
    ) -> None:
        self._session = session
        self._config = config
        self._bodies = bodies
        self._loop = asyncio.get_running_loop()
        self._start = self._loop.time()
        path = (
            "/v1/completions"
            if config.api == "completions"
            else f"/v2/models/{config.model_name}/infer"
        )
        self._infer_urls = [f"{url}{path}" for url in config.urls]
        self._balancer = Balancer(len(config.urls), config.balance)
        self._tasks: set[asyncio.Task[None]] = set()
        self._failures: list[BaseException] = []
        self.sent = 0
        self.ok = 0
        self.errors: Counter[str] = Counter()
        self.latencies: list[float] = []
        self.lateness: list[float] = []
        self.max_outstanding = 0
        self.sent_by_target = [0] * len(config.urls)
        self.ok_by_target = [0] * len(config.urls)

    def elapsed(self) -> float:
        """Seconds since the run started (the schedule's time origin)."""
        return self._loop.time() - self._start

    async def schedule(self, arrivals: np.ndarray, stop: asyncio.Event) -> float:
        """Launch a request at each arrival time; return the sending window in seconds.

        Sleeps until the next arrival, then launches every arrival that is due, so a late
        wake-up (a busy loop) catches up instead of drifting. Returns when the arrivals are
        used up and ``duration_seconds`` has passed (or at once when ``max_requests`` ended
        the schedule), or when ``stop`` is set.
        """
        config = self._config
        schedule = arrivals.tolist()  # Python floats: cheaper to compare one at a time
        count_bound = config.max_requests is not None and len(schedule) >= config.max_requests
        index = 0
        while index < len(schedule) and not stop.is_set():
            now = self.elapsed()
            if schedule[index] > now:
                await asyncio.sleep(min(schedule[index] - now, _MAX_SLEEP_SECONDS))
                continue
            while index < len(schedule) and schedule[index] <= now:
                self._launch(schedule[index])
                index += 1
            await asyncio.sleep(0)  # let the new tasks send before looking at the clock again
        if not count_bound:
            while not stop.is_set() and self.elapsed() < config.duration_seconds:
                remaining = config.duration_seconds - self.elapsed()
                await asyncio.sleep(min(remaining, _MAX_SLEEP_SECONDS))
        return min(self.elapsed(), config.duration_seconds)

    async def drain(self) -> None:
        """Wait for outstanding requests (bounded by the timeout), then cancel the rest.

        Re-raises the first exception a request task died of that is not a request failure
        (those are counted, never raised), since that is a bug in this module.
        """
        if self._tasks:
            _, pending = await asyncio.wait(
                set(self._tasks), timeout=self._config.timeout_seconds + _DRAIN_GRACE_SECONDS
            )
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._failures:
            raise self._failures[0]

    def report(self, window_seconds: float) -> LoadReport:
        """The report of the run so far."""
        return LoadReport(
            sent=self.sent,
            ok=self.ok,
            errors=dict(self.errors),
            window_seconds=window_seconds,
            elapsed_seconds=self.elapsed(),
            target_rps=profiles.mean_rate(self._config.profile, 0.0, window_seconds),
            latency=summarize_latencies(self.latencies),
            lateness=summarize_lateness(self.lateness),
            max_outstanding=self.max_outstanding,
            targets=tuple(
                TargetCount(url, sent, ok)
                for url, sent, ok in zip(
                    self._config.urls, self.sent_by_target, self.ok_by_target, strict=True
                )
            ),
            seed=self._config.seed,
            over_slo=None
            if self._config.slo_seconds is None
            else sum(1 for seconds in self.latencies if seconds > self._config.slo_seconds),
        )

    async def report_live(self, out: TextIO) -> None:
        """Every report interval, one line: rate, latency and lateness over that interval,
        counts since the start. Runs until cancelled."""
        interval = self._config.report_interval_seconds
        last_sent, last_latency, last_lateness, last_time = 0, 0, 0, 0.0
        while True:
            await asyncio.sleep(interval)
            now = self.elapsed()
            span = max(now - last_time, 1e-9)
            latency = summarize_latencies(self.latencies[last_latency:])
            lateness = summarize_lateness(self.lateness[last_lateness:])
            latency_text = f"p50 {_ms(latency.p50)} p99 {_ms(latency.p99)}" if latency else "-"
            errors = sum(self.errors.values())
            error_text = f" ({_format_errors(self.errors)})" if errors else ""
            out.write(
                f"[{now:6.1f}s] {(self.sent - last_sent) / span:7.1f} req/s  sent {self.sent} "
                f"ok {self.ok} errors {errors}{error_text}  "
                f"outstanding {self._balancer.total_outstanding}  latency {latency_text}  "
                f"late p99 {_ms(lateness.p99)}\n"
            )
            out.flush()
            last_sent, last_time = self.sent, now
            last_latency, last_lateness = len(self.latencies), len(self.lateness)

    def _launch(self, scheduled: float) -> None:
        """One arrival: refuse it at the concurrency limit, else start its request task."""
        self.sent += 1
        if self._balancer.total_outstanding >= self._config.concurrency_limit:
            self.errors[CLIENT_CONCURRENCY_LIMIT] += 1
            return
        target = self._balancer.acquire()
        self.sent_by_target[target] += 1
        self.max_outstanding = max(self.max_outstanding, self._balancer.total_outstanding)
        task = self._loop.create_task(self._send(target, scheduled))
        self._tasks.add(task)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            self._failures.append(error)

    async def _send(self, target: int, scheduled: float) -> None:
        """Send one request and count its outcome; never raises for request failures."""
        began = self._loop.time()
        self.lateness.append(began - self._start - scheduled)
        kind: str | None
        try:
            async with self._session.post(
                self._infer_urls[target],
                data=self._bodies[self.sent % len(self._bodies)],
                headers=_JSON_HEADERS,
            ) as response:
                await response.read()
                kind = classify_status(response.status)
        except TimeoutError:
            kind = TIMEOUT
        except aiohttp.ClientConnectionError:
            kind = CONNECTION
        except aiohttp.ClientError:
            kind = PROTOCOL
        except asyncio.CancelledError:
            self.errors[CANCELLED] += 1
            raise
        finally:
            self._balancer.release(target)
        if kind is None:
            self.ok += 1
            self.ok_by_target[target] += 1
            self.latencies.append(self._loop.time() - began)
        else:
            self.errors[kind] += 1


def _describe(error: BaseException) -> str:
    """A one-line reason for a transport failure."""
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


# --- command line -----------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage dump): ``prog: error: message``, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}")
    return value


def _positive_duration(text: str) -> float:
    value = durations.duration_arg(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be longer than 0, not {text!r}")
    return value


def _base_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an http(s) base URL (e.g. http://127.0.0.1:8080)"
        )
    return text.rstrip("/")


def build_parser() -> argparse.ArgumentParser:
    """The ``model-server loadgen`` flags (the profile grammar is in the epilog)."""
    parser = _Parser(
        prog="model-server loadgen",
        description=(
            "Send open-loop (Poisson) KServe v2 inference traffic to one or more model servers "
            "and report achieved rate, errors by kind and latency percentiles."
        ),
        epilog=profiles.PROFILE_HELP
        + "\n\nexample: model-server loadgen --url http://127.0.0.1:8080 --model-name m "
        "--rate 200 --duration 30s --profile step:10s,400 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--url",
        dest="urls",
        action="append",
        required=True,
        type=_base_url,
        help="a model server's base URL, e.g. http://127.0.0.1:8080 (repeat for several)",
    )
    parser.add_argument("--model-name", required=True, help="the KServe v2 model name")
    parser.add_argument(
        "--rate",
        type=_positive_float,
        default=10.0,
        help="requests per second (the profile's base rate; default 10)",
    )
    parser.add_argument(
        "--duration",
        type=_positive_duration,
        default=10.0,
        help="how long arrivals go on, e.g. 30s or 2m (default 10s)",
    )
    parser.add_argument(
        "--profile", default="constant", help="rate over time; see below (default constant)"
    )
    parser.add_argument(
        "--concurrency-limit",
        type=_positive_int,
        default=1000,
        help="most requests outstanding at once; arrivals beyond it are counted as error "
        "client_concurrency_limit, never delayed (default 1000)",
    )
    parser.add_argument("--max-requests", type=_positive_int, help="stop after this many arrivals")
    parser.add_argument(
        "--balance",
        choices=POLICIES,
        default="round-robin",
        help="how requests are spread over several --url (default round-robin)",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_duration,
        default=5.0,
        help="per request, and the most the end of the run waits for outstanding ones (default 5s)",
    )
    parser.add_argument(
        "--slo",
        type=_positive_duration,
        default=None,
        help="a latency objective: the report counts requests slower than it, or not served",
    )
    parser.add_argument(
        "--report-interval",
        type=durations.duration_arg,
        default=1.0,
        help="live lines to stderr this often; 0 turns them off (default 1s)",
    )
    parser.add_argument(
        "--seed", type=int, help="seed for arrival times and payload (default: random, reported)"
    )
    parser.add_argument(
        "--input-size",
        type=_positive_int,
        help="skip the metadata request; send one FP32 input 'input' of shape [1, N]",
    )
    parser.add_argument(
        "--api",
        choices=APIS,
        default="v2",
        help="v2: KServe infer; completions: OpenAI POST /v1/completions (LLM servers)",
    )
    parser.add_argument(
        "--prompt-tokens",
        type=_positive_int,
        default=200,
        help="completions: median prompt length in words (default 200)",
    )
    parser.add_argument(
        "--max-tokens",
        type=_positive_int,
        default=128,
        help="completions: max_tokens of each request (default 128)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object at the end instead of the summary",
    )
    return parser


def config_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> LoadConfig:
    """Build the run's config; a bad profile is a usage error (``parser.error``, exit 2)."""
    try:
        profile = profiles.parse_profile(
            args.profile,
            rate=args.rate,
            duration_seconds=args.duration,
            read_text=lambda path: Path(path).read_text(encoding="utf-8"),
        )
    except profiles.InvalidProfile as error:
        parser.error(f"argument --profile: {error}")
    if profile.max_rate <= 0:
        parser.error(f"argument --profile: {args.profile!r} never sends (its rate is always 0)")
    return LoadConfig(
        urls=tuple(args.urls),
        model_name=args.model_name,
        profile=profile,
        duration_seconds=args.duration,
        seed=args.seed if args.seed is not None else secrets.randbits(32),
        max_requests=args.max_requests,
        concurrency_limit=args.concurrency_limit,
        balance=args.balance,
        timeout_seconds=args.timeout,
        report_interval_seconds=args.report_interval,
        input_size=args.input_size,
        slo_seconds=args.slo,
        api=args.api,
        prompt_tokens=args.prompt_tokens,
        max_tokens=args.max_tokens,
    )


async def _run_until_signalled(config: LoadConfig, live: TextIO | None) -> LoadReport:
    """``run_load`` with SIGINT/SIGTERM ending the sending early instead of killing the run."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        return await run_load(config, stop=stop, live=live)
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``model-server loadgen`` with ``argv`` (default ``sys.argv[1:]``); return the exit code.

    0 after a run (whatever the requests' outcomes: they are in the report), 1 when the run
    cannot start, 2 for bad flags (one line on stderr).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        config = config_from_args(args, parser)
    except SystemExit as exit_request:  # --help, or a usage error already printed
        code = exit_request.code
        return code if isinstance(code, int) else (0 if code is None else 2)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s", stream=sys.stderr)
    live = sys.stderr if config.report_interval_seconds > 0 else None
    try:
        report = asyncio.run(_run_until_signalled(config, live))
    except LoadError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report.to_json()))
    else:
        print(format_summary(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
