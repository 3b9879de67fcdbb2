"""The real ``model-server`` process: readiness, bad requests, shedding, draining, pushing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from pathlib import Path

import aiohttp
import numpy as np
import pytest

from adapter.resources import PodRef
from tests.api.conftest import TOKEN, serve_adapter
from tests.conftest import Pki, free_port
from tests.integration.conftest import (
    metric_value,
    start_model_server,
    stop_process,
    wait_until_ready,
)

pytestmark = pytest.mark.integration

MODEL = "m"
ROW = [0.25] * 64


def infer_body(rows: int = 1) -> dict:
    return {
        "inputs": [{"name": "input", "shape": [rows, 64], "datatype": "FP32", "data": ROW * rows}]
    }


async def infer(session: aiohttp.ClientSession, url: str) -> tuple[int, dict, dict]:
    async with session.post(f"{url}/v2/models/{MODEL}/infer", json=infer_body()) as response:
        return response.status, await response.json(), dict(response.headers)


def pushing_flags(tmp_path: Path, pki: Pki, adapter_url: str, pod: str) -> list[str]:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    return [
        "--adapter-url",
        adapter_url,
        "--adapter-ca-file",
        str(pki.ca_cert),
        "--push-token-file",
        str(token_file),
        "--push-interval",
        "200ms",
        "--namespace",
        "ml",
        "--pod-name",
        pod,
        "--labels",
        "app=model",
        "--deployment",
        "model",
    ]


async def test_not_ready_until_the_weights_are_loaded(tmp_path: Path) -> None:
    server = start_model_server(tmp_path, "--model-name", MODEL, "--model-size-mb", "1500")
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{server.url}/v2/health/ready") as response:
                first_ready = response.status
            status, body, headers = await infer(session, server.url)
            assert (status, headers.get("Retry-After")) == (503, "1")
            assert "loading" in body["error"]
            await asyncio.to_thread(wait_until_ready, server)
            async with session.get(f"{server.url}/v2/models/{MODEL}/ready") as response:
                assert (response.status, await response.json()) == (
                    200,
                    {"name": MODEL, "ready": True},
                )
            status, body, _ = await infer(session, server.url)
            assert status == 200
            assert body["outputs"][0]["shape"] == [1, 10]
    finally:
        stop_process(server.process)
    assert first_ready == 503
    assert "loaded 1500" in server.log()


BAD_REQUESTS = [
    ("POST", f"/v2/models/{MODEL}/infer", b"not json", 400, "not valid"),
    ("POST", f"/v2/models/{MODEL}/infer", b'{"inputs": []}', 400, "exactly one tensor"),
    (
        "POST",
        f"/v2/models/{MODEL}/infer",
        json.dumps(
            {"inputs": [{"name": "input", "shape": [1, 64], "datatype": "INT32", "data": ROW}]}
        ).encode(),
        400,
        "datatype",
    ),
    (
        "POST",
        f"/v2/models/{MODEL}/infer",
        json.dumps(
            {"inputs": [{"name": "input", "shape": [1, 32], "datatype": "FP32", "data": ROW}]}
        ).encode(),
        400,
        "shape",
    ),
    (
        "POST",
        f"/v2/models/{MODEL}/infer",
        json.dumps(
            {"inputs": [{"name": "input", "shape": [2, 64], "datatype": "FP32", "data": ROW}]}
        ).encode(),
        400,
        "needs 128",
    ),
    ("POST", "/v2/models/other/infer", json.dumps(infer_body()).encode(), 404, "unknown model"),
    ("GET", "/v2/models/other", b"", 404, "unknown model"),
    ("GET", f"/v2/models/{MODEL}/infer", b"", 405, "Method Not Allowed"),
    ("GET", "/nope", b"", 404, "Not Found"),
]


async def test_bad_requests_get_4xx_with_a_message(tmp_path: Path) -> None:
    server = start_model_server(tmp_path, "--model-name", MODEL)
    try:
        await asyncio.to_thread(wait_until_ready, server)
        async with aiohttp.ClientSession() as session:
            for method, path, body, code, message in BAD_REQUESTS:
                async with session.request(method, f"{server.url}{path}", data=body) as response:
                    assert response.status == code, (path, body)
                    assert message in (await response.json())["error"], (path, body)
            assert (await infer(session, server.url))[0] == 200
        assert metric_value(server.url, 'inference_requests_total{outcome="bad_request"}') == 5
        assert metric_value(server.url, 'inference_requests_total{outcome="error"}') == 0
    finally:
        stop_process(server.process)


async def test_overload_is_shed_with_503_and_retry_after(tmp_path: Path) -> None:
    server = start_model_server(
        tmp_path,
        "--model-name",
        MODEL,
        "--max-concurrency",
        "1",
        "--max-queue",
        "2",
        "--service-time",
        "constant:400ms",
    )
    try:
        await asyncio.to_thread(wait_until_ready, server)
        async with aiohttp.ClientSession() as session:
            first = asyncio.ensure_future(infer(session, server.url))
            await asyncio.sleep(0.1)  # the first holds the slot; now two may wait, the rest shed
            rest = await asyncio.gather(*(infer(session, server.url) for _ in range(7)))
            results = [await first, *rest]
        statuses = sorted(status for status, _, _ in results)
        assert statuses == [200] * 3 + [503] * 5
        for status, body, headers in results:
            if status == 503:
                assert headers["Retry-After"] == "1"
                assert "overloaded" in body["error"]
        assert metric_value(server.url, 'inference_requests_total{outcome="shed"}') == 5
        # Shed requests are not latency observations.
        assert metric_value(server.url, "inference_request_duration_seconds_count") == 3
    finally:
        stop_process(server.process)


async def test_sigterm_drains_every_queued_request_and_pushes_last(
    tmp_path: Path, pki: Pki
) -> None:
    async with serve_adapter(pki, clock=time.time, window_seconds=60) as adapter:
        server = start_model_server(
            tmp_path,
            "--model-name",
            MODEL,
            "--max-concurrency",
            "2",
            "--service-time",
            "constant:300ms",
            "--drain-timeout",
            "10s",
            *pushing_flags(tmp_path, pki, adapter.url, "model-7d4b9c-drain"),
        )
        await asyncio.to_thread(wait_until_ready, server)
        async with aiohttp.ClientSession() as session:
            pending = [asyncio.ensure_future(infer(session, server.url)) for _ in range(6)]
            await asyncio.sleep(0.15)
            terminated = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.15)
            async with aiohttp.ClientSession() as late:
                status, body, headers = await infer(late, server.url)
                async with late.get(f"{server.url}/v2/health/ready") as response:
                    ready_status = response.status
            results = await asyncio.gather(*pending)
        exit_code = await asyncio.to_thread(server.process.wait, 15)
        took = time.monotonic() - terminated
        assert [r[0] for r in results] == [200] * 6, "a queued request was lost in the drain"
        assert (status, headers.get("Retry-After")) == (503, "1")
        assert "shutting down" in body["error"]
        assert ready_status == 503
        assert exit_code == 0
        assert took < 10
        record = adapter.state.store.get(PodRef("ml", "model-7d4b9c-drain"))
        assert record is not None
        assert record.completed_requests() == 6, "the final push did not carry every request"


async def test_pushes_survive_an_adapter_restart_without_loss(tmp_path: Path, pki: Pki) -> None:
    port = free_port()
    pod = PodRef("ml", "model-7d4b9c-resil")
    async with serve_adapter(pki, port=port, clock=time.time, window_seconds=120) as first:
        server = start_model_server(
            tmp_path,
            "--model-name",
            MODEL,
            "--service-time",
            "constant:5ms",
            *pushing_flags(tmp_path, pki, first.url, pod.name),
        )
        await asyncio.to_thread(wait_until_ready, server)
        async with aiohttp.ClientSession() as session:
            for _ in range(40):
                assert (await infer(session, server.url))[0] == 200
            await asyncio.sleep(0.6)
            record = first.state.store.get(pod)
            assert record is not None
            before_restart = record.completed_requests()
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(30):  # the adapter is down: the pod keeps serving, pushes fail
                assert (await infer(session, server.url))[0] == 200
            await asyncio.sleep(0.5)
        async with serve_adapter(pki, port=port, clock=time.time, window_seconds=120) as second:
            async with aiohttp.ClientSession() as session:
                for _ in range(20):
                    assert (await infer(session, server.url))[0] == 200
            deadline = time.monotonic() + 5  # backoff is at most two push intervals (0.4 s)
            after_restart = 0
            while time.monotonic() < deadline:
                record = second.state.store.get(pod)
                after_restart = record.completed_requests() if record else 0
                if before_restart + after_restart == 90:
                    break
                await asyncio.sleep(0.2)
        served = metric_value(server.url, 'inference_requests_total{outcome="ok"}')
        failed = metric_value(server.url, 'model_server_pushes_total{result="failed"}')
    finally:
        stop_process(server.process)
    assert served == 90
    assert failed >= 1
    assert before_restart + after_restart == 90, (before_restart, after_restart)


async def test_simulated_slots_are_held_for_the_drawn_time(tmp_path: Path) -> None:
    server = start_model_server(
        tmp_path,
        "--model-name",
        MODEL,
        "--max-concurrency",
        "4",
        "--service-time",
        "lognormal:10ms,0.5",
        "--seed",
        "7",
    )
    try:
        await asyncio.to_thread(wait_until_ready, server)
        rng = np.random.default_rng(1)
        async with aiohttp.ClientSession() as session:

            async def one(delay: float) -> int:
                await asyncio.sleep(delay)
                return (await infer(session, server.url))[0]

            statuses = await asyncio.gather(
                *(one(d) for d in np.cumsum(rng.exponential(0.006, 600)))
            )
        assert set(statuses) == {200}
        drawn = metric_value(server.url, "model_server_service_time_drawn_seconds_total")
        held = metric_value(server.url, "model_server_slot_held_seconds_total")
    finally:
        stop_process(server.process)
    assert held == pytest.approx(drawn, rel=0.01)


async def test_the_drain_timeout_bounds_the_exit_even_with_requests_running(
    tmp_path: Path,
) -> None:
    server = start_model_server(
        tmp_path,
        "--model-name",
        MODEL,
        "--max-concurrency",
        "1",
        "--service-time",
        "constant:20s",
        "--drain-timeout",
        "5s",
    )
    await asyncio.to_thread(wait_until_ready, server)
    async with aiohttp.ClientSession() as session:
        stuck = asyncio.ensure_future(infer(session, server.url))
        await asyncio.sleep(0.3)
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(server.process.wait, 15)
        took = time.monotonic() - started
        stuck.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
            await stuck
    assert code == 0
    assert took <= 5.5, f"exited {took:.1f}s after SIGTERM with a 5s drain timeout"
    assert "drain timeout" in server.log()
