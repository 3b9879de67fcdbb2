"""The real ``python -m model_server.loadgen`` process against KServe v2 servers on 127.0.0.1.

Most tests point it at ``StubModelServer``s running in the test's own event loop, because they
need knobs the real server does not have (shed a fixed fraction, count what arrived, track peak
concurrency exactly). The last tests run it against the real ``python -m model_server``.

Bounds on counts are Poisson/binomial bounds of four standard deviations around the expected
value, with fixed seeds, so they hold for a correct generator and fail for a wrong rate.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp import web

from tests.conftest import free_port
from tests.integration.conftest import start_model_server, stop_process, wait_until_ready

pytestmark = pytest.mark.integration

MODEL = "m"
INPUT_SIZE = 4
RUN_TIMEOUT_SECONDS = 30


class StubModelServer:
    """A stand-in for ``python -m model_server`` speaking the real KServe v2 wire format.

    ``GET /v2/models/{name}`` answers the metadata the real server answers (one FP32 input
    ``input`` of shape ``[-1, INPUT_SIZE]``); ``POST /v2/models/{name}/infer`` checks the body
    like the real server (name, datatype, shape ``[1, INPUT_SIZE]``, that many numbers: else
    400), waits ``service_seconds`` and answers 200, or answers ``shed_status`` at once for a
    seeded ``shed_fraction`` of requests. Unlike the real server it has no slots or queue
    (every request is served concurrently), and it counts exactly what it saw.

    To run a test against the real server instead, start it with ``start_model_server(tmp_path,
    "--mode", "simulated", "--service-time", "constant:5ms", "--model-name", "m")`` from
    ``tests/integration/conftest.py`` and take its counts from ``metric_value(url, ...)``.
    """

    def __init__(
        self,
        *,
        service_seconds: float = 0.005,
        shed_fraction: float = 0.0,
        shed_status: int = 503,
        seed: int = 0,
    ) -> None:
        self.service_seconds = service_seconds
        self.shed_fraction = shed_fraction
        self.shed_status = shed_status
        self.rng = np.random.default_rng(seed)
        self.infer_requests = 0
        self.shed = 0
        self.bad_requests = 0
        self.active = 0
        self.peak_active = 0
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/v2/models/{name}", self.metadata)
        app.router.add_post("/v2/models/{name}/infer", self.infer)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def metadata(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name != MODEL:
            return web.json_response({"error": f"unknown model {name}"}, status=404)
        return web.json_response(
            {
                "name": MODEL,
                "versions": ["1"],
                "platform": "stub",
                "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, INPUT_SIZE]}],
                "outputs": [{"name": "output", "datatype": "FP32", "shape": [-1, 2]}],
            }
        )

    async def infer(self, request: web.Request) -> web.Response:
        self.infer_requests += 1
        if request.match_info["name"] != MODEL or not self.valid(await request.read()):
            self.bad_requests += 1
            return web.json_response({"error": "bad request"}, status=400)
        if self.rng.random() < self.shed_fraction:
            self.shed += 1
            return web.json_response({"error": "overloaded"}, status=self.shed_status)
        self.active += 1
        self.peak_active = max(self.peak_active, self.active)
        try:
            await asyncio.sleep(self.service_seconds)
        finally:
            self.active -= 1
        return web.json_response(
            {
                "model_name": MODEL,
                "outputs": [
                    {"name": "output", "shape": [1, 2], "datatype": "FP32", "data": [0.5, 0.5]}
                ],
            }
        )

    @staticmethod
    def valid(body: bytes) -> bool:
        try:
            (tensor,) = json.loads(body)["inputs"]
            return (
                tensor["name"] == "input"
                and tensor["datatype"] == "FP32"
                and tensor["shape"] == [1, INPUT_SIZE]
                and len(tensor["data"]) == INPUT_SIZE
                and all(isinstance(value, float) for value in tensor["data"])
            )
        except (ValueError, KeyError, TypeError):
            return False


StubFactory = Callable[..., Awaitable[StubModelServer]]


@pytest.fixture
async def stub() -> AsyncIterator[StubFactory]:
    """Start ``StubModelServer``s on free ports; all are stopped after the test."""
    servers: list[StubModelServer] = []

    async def start(**knobs: Any) -> StubModelServer:
        server = StubModelServer(**knobs)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    wall_seconds: float

    def report(self) -> dict[str, Any]:
        assert self.returncode == 0, self.stderr
        return json.loads(self.stdout)


def loadgen_command(*flags: str) -> list[str]:
    return [sys.executable, "-m", "model_server.loadgen", *flags]


async def run_loadgen(*flags: str) -> Result:
    """Run the loadgen process without blocking the event loop the stubs serve on."""
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        *loadgen_command(*flags),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return Result(process.returncode, stdout.decode(), stderr.decode(), time.monotonic() - started)


def json_flags(*urls: str, rate: float, duration: str, seed: int = 1) -> list[str]:
    flags = [f"--url={url}" for url in urls]
    return [
        *flags,
        "--model-name",
        MODEL,
        "--rate",
        str(rate),
        "--duration",
        duration,
        "--seed",
        str(seed),
        "--report-interval",
        "0",
        "--json",
    ]


def within(count: int, mean: float, variance: float, sds: float = 4.0) -> bool:
    return abs(count - mean) <= sds * math.sqrt(variance)


async def test_json_report_fields_types_and_poisson_count(stub: StubFactory) -> None:
    server = await stub(service_seconds=0.005)
    result = await run_loadgen(*json_flags(server.url, rate=200, duration="2s"))
    report = result.report()

    assert isinstance(report["sent"], int)
    assert isinstance(report["ok"], int)
    assert isinstance(report["errors"], dict)
    assert isinstance(report["achieved_rps"], float)
    latency = report["latency_seconds"]
    assert set(latency) == {"mean", "p50", "p90", "p99", "max"}
    assert all(isinstance(value, float) for value in latency.values())

    assert within(report["sent"], 400, 400)
    assert report["ok"] == report["sent"] == server.infer_requests
    assert report["errors"] == {}
    assert server.bad_requests == 0
    assert report["achieved_rps"] == pytest.approx(report["sent"] / 2.0, rel=0.05)
    assert report["target_rps"] == pytest.approx(200.0)
    assert 0.005 <= latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"] < 1.0
    assert 0.005 <= latency["mean"] <= latency["max"]
    assert report["behind_schedule"] is False
    assert report["lateness_seconds"]["p99"] < 0.02
    assert report["seed"] == 1
    assert result.wall_seconds < 10


@pytest.mark.parametrize("status", [503, 429])
async def test_shed_requests_are_counted_by_status(stub: StubFactory, status: int) -> None:
    server = await stub(shed_fraction=0.3, shed_status=status, seed=status)
    report = (await run_loadgen(*json_flags(server.url, rate=200, duration="2s"))).report()
    sent = report["sent"]
    kind = f"http_{status}"
    assert report["errors"] == {kind: server.shed}
    assert report["ok"] + report["errors"][kind] == sent
    assert within(server.shed, 0.3 * sent, sent * 0.3 * 0.7)


async def test_round_robin_spreads_evenly_over_two_servers(stub: StubFactory) -> None:
    first = await stub(service_seconds=0.002)
    second = await stub(service_seconds=0.05)  # speed does not matter to round-robin
    flags = json_flags(first.url, second.url, rate=200, duration="2s")
    report = (await run_loadgen(*flags, "--balance", "round-robin")).report()
    assert first.infer_requests + second.infer_requests == report["sent"] > 300
    assert abs(first.infer_requests - second.infer_requests) <= 1
    assert [target["sent"] for target in report["targets"]] == [
        first.infer_requests,
        second.infer_requests,
    ]


async def test_least_outstanding_favours_the_faster_server(stub: StubFactory) -> None:
    fast = await stub(service_seconds=0.002)
    slow = await stub(service_seconds=0.1)
    flags = json_flags(slow.url, fast.url, rate=200, duration="2s")
    report = (await run_loadgen(*flags, "--balance", "least-outstanding")).report()
    assert fast.infer_requests + slow.infer_requests == report["sent"] > 300
    assert report["ok"] == report["sent"]
    assert fast.infer_requests > 3 * slow.infer_requests > 0


async def test_max_requests_bounds_the_count(stub: StubFactory) -> None:
    server = await stub()
    flags = json_flags(server.url, rate=500, duration="1m")
    result = await run_loadgen(*flags, "--max-requests", "25")
    report = result.report()
    assert report["sent"] == report["ok"] == server.infer_requests == 25
    assert report["window_seconds"] < 1.0  # 25 arrivals at 500/s take about 50 ms
    assert result.wall_seconds < 5


async def test_concurrency_limit_refuses_arrivals_instead_of_delaying_them(
    stub: StubFactory,
) -> None:
    server = await stub(service_seconds=0.2)
    flags = json_flags(server.url, rate=200, duration="1s")
    report = (await run_loadgen(*flags, "--concurrency-limit", "5")).report()
    refused = report["errors"]["client_concurrency_limit"]
    assert server.peak_active <= 5
    assert report["max_outstanding"] == 5
    assert report["ok"] == server.infer_requests
    assert report["ok"] + refused == report["sent"]
    # At most 5 in flight for 0.2 s each: about 25 ok in 1 s; the rest of ~200 refused.
    assert report["ok"] <= 40
    assert refused >= 100
    # Open loop: the refused arrivals did not slow the schedule down.
    assert within(report["sent"], 200, 200)


async def test_slow_answers_are_timeouts(stub: StubFactory) -> None:
    server = await stub(service_seconds=1.0)
    flags = json_flags(server.url, rate=50, duration="500ms")
    result = await run_loadgen(*flags, "--timeout", "100ms")
    report = result.report()
    assert report["sent"] > 5
    assert report["errors"] == {"timeout": report["sent"]}
    assert report["ok"] == 0
    assert report["latency_seconds"] == dict.fromkeys(("mean", "p50", "p90", "p99", "max"))
    assert result.wall_seconds < 5  # the drain is bounded by --timeout, not the 1 s answers


async def test_refused_connections_are_connection_errors() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    flags = json_flags(url, rate=50, duration="500ms")
    report = (await run_loadgen(*flags, "--input-size", "4")).report()
    assert report["sent"] > 5
    assert report["errors"] == {"connection": report["sent"]}


async def test_unknown_model_exits_1_with_one_line(stub: StubFactory) -> None:
    server = await stub()
    result = await run_loadgen(
        "--url", server.url, "--model-name", "other", "--duration", "1s", "--json"
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "answered HTTP 404" in result.stderr
    assert server.infer_requests == 0


async def test_live_lines_on_stderr_and_summary_on_stdout(stub: StubFactory) -> None:
    server = await stub()
    result = await run_loadgen(
        "--url",
        server.url,
        "--model-name",
        MODEL,
        "--rate",
        "100",
        "--duration",
        "1s",
        "--report-interval",
        "200ms",
    )
    assert result.returncode == 0, result.stderr
    live = [line for line in result.stderr.splitlines() if "req/s" in line]
    assert len(live) >= 3
    assert all("outstanding" in line and "latency" in line for line in live)
    assert result.stdout.startswith("sent ")
    assert "latency: mean" in result.stdout
    assert "errors: none" in result.stdout


def test_sigint_ends_sending_early_and_still_reports(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    process = subprocess.Popen(
        loadgen_command(*json_flags(url, rate=20, duration="1m"), "--input-size", "4"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.5)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=15)
    assert process.returncode == 0, stderr
    report = json.loads(stdout)
    assert report["window_seconds"] < 5
    assert report["sent"] == report["errors"]["connection"] > 0


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--rate", "-1"], "argument --rate: must be a positive number, not '-1'"),
        (["--duration", "10"], 'argument --duration: invalid duration "10": missing unit'),
        (["--profile", "nope"], "argument --profile: invalid profile 'nope': unknown kind"),
        (["--profile", "step:10,5"], 'invalid duration "10": missing unit'),
    ],
)
def test_bad_flags_exit_2_with_one_line(flags: list[str], message: str) -> None:
    result = subprocess.run(
        loadgen_command("--url", "http://127.0.0.1:9", "--model-name", MODEL, *flags),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("model-server loadgen: error: ")
    assert message in result.stderr


def test_against_the_real_model_server(tmp_path: Path) -> None:
    """Metadata and infer bodies as the real server reads them; shedding as it sheds."""
    fast = start_model_server(
        tmp_path, "--mode", "simulated", "--service-time", "constant:5ms", "--model-name", MODEL
    )
    tiny = start_model_server(
        tmp_path,
        "--mode",
        "simulated",
        "--service-time",
        "constant:50ms",
        "--max-concurrency",
        "1",
        "--max-queue",
        "1",
        "--model-name",
        MODEL,
    )
    try:
        wait_until_ready(fast)
        wait_until_ready(tiny)
        ok = subprocess.run(
            loadgen_command(*json_flags(fast.url, rate=100, duration="1s")),
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_SECONDS,
            check=False,
        )
        shed = subprocess.run(
            loadgen_command(*json_flags(tiny.url, rate=100, duration="1s")),
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_SECONDS,
            check=False,
        )
    finally:
        stop_process(fast.process)
        stop_process(tiny.process)
    assert ok.returncode == 0, ok.stderr
    report = json.loads(ok.stdout)
    assert report["sent"] > 50
    assert report["ok"] == report["sent"], report["errors"]
    assert report["latency_seconds"]["p50"] >= 0.005
    assert shed.returncode == 0, shed.stderr
    report = json.loads(shed.stdout)
    # One slot of 50 ms and a queue of one: at most ~20 ok/s out of ~100 offered.
    assert report["errors"]["http_503"] >= report["sent"] // 2
    assert report["ok"] + report["errors"]["http_503"] == report["sent"]


def test_model_server_loadgen_subcommand_is_the_same_program() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "model_server", "loadgen", "--help"],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: model-server loadgen")
    assert "sine:AMPLITUDE,PERIOD" in result.stdout
