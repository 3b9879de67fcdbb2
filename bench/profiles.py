"""CPU-time profiles of the hot paths (``python -m bench --profile DIR``).

- ``push_server``: our adapter process under cProfile (``bench.profiled_adapter``) while
  ``bench.load`` pushes at it for a few seconds;
- ``query``: the cold in-process selector query for p99 (handler level), 1,000 pods;
- ``model_server``: the simulated model server (0 ms service time) under cProfile
  (``bench.profiled_model_server``) while ``bench.infer_load`` posts at it for a few seconds.

Each writes a ``.prof`` file (open with ``python -m pstats`` or snakeviz) and returns the top
functions by own and cumulative CPU time as text, for the result file. cProfile adds overhead
per Python call, so the absolute times are inflated; the shares are what to read.
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

from bench import model_server as model_server_bench
from bench import push, query, servers


def _top(stats_source: str | cProfile.Profile, lines: int = 25) -> str:
    out = io.StringIO()
    stats = pstats.Stats(stats_source, stream=out)
    stats.strip_dirs()
    stats.sort_stats("tottime").print_stats(lines)
    stats.sort_stats("cumulative").print_stats(lines)
    return "\n".join(line for line in out.getvalue().splitlines() if line.strip())


def push_server(directory: Path, seconds: float = 6.0) -> str:
    """Profile the adapter process under the push load; returns the top functions."""
    out = directory / "push-server.prof"
    cert_dir = directory / "certs"
    servers.prepare_certs(cert_dir)
    port = servers.free_port()
    argv = [
        sys.executable,
        "-m",
        "bench.profiled_adapter",
        str(out),
        "serve",
        "--bind-address",
        "127.0.0.1",
        "--secure-port",
        str(port),
        "--cert-dir",
        str(cert_dir),
    ]
    server = servers._start("profiled adapter", argv, port, cert_dir, directory / "adapter.log")
    server_cpus, load_cpus = push.cpu_plan(True)
    try:
        if server_cpus:
            servers.pin(server.pid, server_cpus)
        settings = push.PushSettings(duration_seconds=seconds, warmup_seconds=0.5)
        push.run_load(server, cert_dir, settings, 0, push.ACCEPTED, load_cpus, seconds)
    finally:
        server.stop()
    (directory / "adapter.log").unlink(missing_ok=True)
    return _top(str(out))


def cold_query(directory: Path, rounds: int = 10) -> str:
    """Profile the cold p99 selector query (handler level) over 1,000 pods."""
    fleet = query.Fleet(1000)
    for _ in range(10):
        fleet.push_round()
    prepare = query.query_levels(fleet, query.P99)["handler"]
    profiler = cProfile.Profile(time.process_time)

    async def measure() -> None:
        for _ in range(rounds):
            fleet.push_round()
            operation = prepare()
            profiler.enable()
            await operation()
            profiler.disable()

    asyncio.run(measure())
    profiler.dump_stats(str(directory / "query-cold-p99.prof"))
    return _top(profiler)


def model_server(directory: Path, seconds: float = 6.0) -> str:
    """Profile the simulated model server under closed-loop load; returns the top functions."""
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / "model-server.prof"
    log = directory / "model-server.log"
    port = servers.free_port()
    argv = [
        "-m",
        "bench.profiled_model_server",
        str(out),
        *model_server_bench.model_server_argv(port)[2:],
    ]
    server = model_server_bench.start("profiled model server", argv, port, log)
    server_cpus, load_cpus = push.cpu_plan(True)
    try:
        if server_cpus:
            servers.pin(server.pid, server_cpus)
        body = model_server_bench.request_body(server)
        status, answer = model_server_bench.fetch(server.url + model_server_bench.INFER_PATH, body)
        if status != 200:
            raise RuntimeError(f"the profiled model server answered {status}")
        files = {"body": directory / "infer-body.json", "answer": directory / "infer-answer.json"}
        files["body"].write_bytes(body)
        files["answer"].write_bytes(answer)
        settings = model_server_bench.ModelServerSettings(
            duration_seconds=seconds, warmup_seconds=0.5
        )
        model_server_bench.run_load(server, files, settings, load_cpus, seconds)
    finally:
        server.stop()
    log.unlink(missing_ok=True)
    return _top(str(out))


def run(directory: Path) -> dict[str, str]:
    """Every profile, written under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    return {
        "push_server": push_server(directory),
        "query_cold_p99": cold_query(directory),
        "model_server": model_server(directory),
    }
