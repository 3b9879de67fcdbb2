"""Model-server overhead: the simulated server with zero service time against a bare aiohttp app.

Ours is ``python -m model_server --mode simulated --service-time constant:0ms --max-concurrency 64
--max-queue 100000 --model-size-mb 1`` on 127.0.0.1, so everything it spends per request is its
own overhead: v2 validation, the scheduler's queue and slot hand-off, the (zero) sleep, the
projection, encoding the answer, latency recording and Prometheus metrics. The baseline is
``bench.infer_baseline``: read the same body, ``json.loads`` it, answer the model server's own
answer bytes. Both are plain HTTP with keep-alive, separate processes pinned to one CPU; the load is
``bench.infer_load`` (closed loop on ``bench.closed_loop``, ``concurrency`` connections) in another
process on another CPU. The body is what ``model_server loadgen`` sends (``loadgen.infer_body``
from the model's metadata). Runs alternate ours/baseline; each is a warm-up then ``duration``
measured seconds.

Figures: server CPU per request (/proc utime+stime over the measured span / requests answered)
and requests/s, medians over runs, ratio ours/baseline. A run counts only if every answer was a
200 with exactly the expected body.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench import closed_loop, push, servers, stats
from model_server import loadgen

MODEL = "model"
INFER_PATH = f"/v2/models/{MODEL}/infer"


@dataclass(frozen=True)
class ModelServerSettings:
    runs: int = 5
    duration_seconds: float = 5.0
    warmup_seconds: float = 1.0
    concurrency: int = 32
    pin: bool = True


def model_server_argv(port: int) -> list[str]:
    """The model server as the brief fixes it: simulated, zero service time, no shedding."""
    return [
        "-m",
        "model_server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--model-name",
        MODEL,
        "--mode",
        "simulated",
        "--service-time",
        "constant:0ms",
        "--max-concurrency",
        "64",
        "--max-queue",
        "100000",
        "--model-size-mb",
        "1",
    ]


def fetch(url: str, body: bytes | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    """GET (or POST ``body``) a 127.0.0.1 URL; the status and body, errors included."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError("the benchmark talks to http://127.0.0.1 only")
    headers = {"Content-Type": "application/json"} if body is not None else {}
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def start(name: str, argv: list[str], port: int, log_file: Path) -> servers.Server:
    """Start ``argv`` (after the interpreter) and wait, bounded, for ``/v2/health/ready``."""
    log = log_file.open("wb")
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, *argv],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    server = servers.Server(name, process, f"http://127.0.0.1:{port}", log)
    servers.wait_until_answering(server, "/v2/health/ready")
    return server


def request_body(server: servers.Server) -> bytes:
    """What ``model_server loadgen`` would send: built from the model's own metadata."""
    status, metadata = fetch(f"{server.url}/v2/models/{MODEL}")
    if status != 200:
        raise RuntimeError(f"model metadata answered {status}")
    inputs = loadgen.parse_metadata(json.loads(metadata))
    return loadgen.infer_body(inputs, np.random.default_rng(5))


def run_load(
    server: servers.Server,
    files: dict[str, Path],
    settings: ModelServerSettings,
    load_cpus: set[int] | None,
    duration: float,
) -> dict[str, Any]:
    argv = [
        "--url",
        server.url + INFER_PATH,
        "--body-file",
        str(files["body"]),
        "--expect-file",
        str(files["answer"]),
    ]
    return closed_loop.spawn("bench.infer_load", argv, server, settings, load_cpus, duration)


def run(settings: ModelServerSettings, log=print) -> list[dict[str, Any]]:
    """Run the model-server overhead benchmark; returns its two figures."""
    server_cpus, load_cpus = push.cpu_plan(settings.pin)
    with tempfile.TemporaryDirectory(prefix="bench-model-server-") as tmp:
        files = {"body": Path(tmp) / "body.json", "answer": Path(tmp) / "answer.json"}
        port = servers.free_port()
        ours = start("model server", model_server_argv(port), port, Path(tmp) / "ours.log")
        baseline = None
        try:
            body = request_body(ours)
            status, answer = fetch(ours.url + INFER_PATH, body)
            if status != 200:
                raise RuntimeError(f"the model server answered {status}: {answer[:200]!r}")
            files["body"].write_bytes(body)
            files["answer"].write_bytes(answer)
            port = servers.free_port()
            baseline_argv = [
                "-m",
                "bench.infer_baseline",
                "--port",
                str(port),
                "--answer-file",
                str(files["answer"]),
            ]
            baseline = start("baseline", baseline_argv, port, Path(tmp) / "baseline.log")
            if server_cpus:
                servers.pin(ours.pid, server_cpus)
                servers.pin(baseline.pid, server_cpus)

            def loader(server: servers.Server):
                return lambda duration: run_load(server, files, settings, load_cpus, duration)

            runs = closed_loop.alternate(
                "model-server", settings, loader(ours), loader(baseline), log
            )
        finally:
            ours.stop()
            if baseline is not None:
                baseline.stop()
        ours_log_tail = (Path(tmp) / "ours.log").read_bytes()[-600:].decode(errors="replace")
    return summarize(settings, runs, server_cpus, load_cpus, len(body), len(answer), ours_log_tail)


def summarize(
    settings: ModelServerSettings,
    runs: dict[str, list[dict[str, Any]]],
    server_cpus: set[int] | None,
    load_cpus: set[int] | None,
    body_bytes: int,
    answer_bytes: int,
    log_tail: str,
) -> list[dict[str, Any]]:
    valid = all(r["valid"] for rs in runs.values() for r in rs)

    def medians(key: str) -> tuple[float, float]:
        return (
            stats.median([r[key] or 0 for r in runs["ours"]]),
            stats.median([r[key] or 0 for r in runs["baseline"]]),
        )

    def per_run(key: str) -> list[float]:
        return [
            stats.ratio(o[key] or 0, b[key] or 0)
            for o, b in zip(runs["ours"], runs["baseline"], strict=True)
        ]

    common = {
        "valid": valid,
        "settings": {
            **settings.__dict__,
            "server_cpus": sorted(server_cpus) if server_cpus else None,
            "load_cpus": sorted(load_cpus) if load_cpus else None,
            "body_bytes": body_bytes,
            "answer_bytes": answer_bytes,
            "model_server": " ".join(["python", *model_server_argv(0)]),
        },
    }
    cpu_ours, cpu_base = medians("server_cpu_us_per_request")
    rps_ours, rps_base = medians("requests_per_second")
    util_ours, util_base = medians("server_cpu_utilisation")
    return [
        {
            "name": "model server CPU per request",
            "unit": "us CPU/request",
            "ours": cpu_ours,
            "baseline": cpu_base,
            "ratio": stats.ratio(cpu_ours, cpu_base),
            "ratio_per_run": per_run("server_cpu_us_per_request"),
            "overhead_us_per_request": cpu_ours - cpu_base,
            "target": "none (reported)",
            "met": None,
            **common,
            "runs": runs,
            "log_tail": log_tail,
        },
        {
            "name": "model server throughput",
            "unit": "requests/s",
            "ours": rps_ours,
            "baseline": rps_base,
            "ratio": stats.ratio(rps_ours, rps_base),
            "ratio_per_run": per_run("requests_per_second"),
            "server_cpu_utilisation": {"ours": util_ours, "baseline": util_base},
            "target": "none (reported)",
            "met": None,
            **common,
        },
    ]
