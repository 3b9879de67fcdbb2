"""``model-server --mimic``: the real app on 127.0.0.1 serving each server's metric surface.

Every mimic's ``/metrics`` is read with prometheus-client's own parser and compared with the
table of facts read at the source (``model_server.mimic.surfaces``): the families, their types,
label names and bucket bounds. The language-model mimics also generate tokens: time to first
token and KV-cache use must move with load, and ``/v1/completions`` must answer as OpenAI does.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from model_server import profiles
from model_server.app import ModelServerConfig, ModelServerState, make_app
from model_server.loadgen import LoadConfig, run_load
from model_server.mimic import SERVERS, surface
from model_server.mimic.surfaces import buckets_for
from model_server.service_time import ServiceTime
from model_server.tokens import TokenModel

MODEL = "m"
ROW = [0.25] * 64
FAST_TOKENS = TokenModel(
    prompt_median_tokens=50,
    output_median_tokens=20,
    prefill_seconds_per_token=0.0002,
    decode_step_seconds=0.003,
    batch_slowdown=0.1,
    kv_capacity_tokens=2048,
    max_model_len=1024,
)

ServerFactory = Callable[..., Awaitable[str]]


@pytest.fixture
async def start(aiohttp_server: Any) -> AsyncIterator[ServerFactory]:
    """Start the model server app (mimicking ``server``) and return its base URL once ready."""

    async def starting(mimic: str | None, **config: Any) -> str:
        settings = {
            "model_name": MODEL,
            "model_size_mb": 1.0,
            "service_time": ServiceTime("constant", 0.002),
            "tokens": FAST_TOKENS,
            **config,
        }
        state = ModelServerState(ModelServerConfig(mimic=mimic, **settings))
        server: TestServer = await aiohttp_server(make_app(state))
        url = f"http://127.0.0.1:{server.port}"
        async with aiohttp.ClientSession() as session:
            for _ in range(400):
                async with session.get(f"{url}/v2/health/ready") as response:
                    if response.status == 200:
                        return url
                await asyncio.sleep(0.01)
        raise AssertionError("the model server did not become ready")

    yield starting


async def infer(session: aiohttp.ClientSession, url: str) -> int:
    body = {"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": ROW}]}
    async with session.post(f"{url}/v2/models/{MODEL}/infer", json=body) as response:
        await response.read()
        return response.status


async def complete(
    session: aiohttp.ClientSession, url: str, **fields: Any
) -> tuple[int, dict[str, Any]]:
    body = {"model": MODEL, "prompt": "tell me about queues " * 5, "max_tokens": 16, **fields}
    async with session.post(f"{url}/v1/completions", json=body) as response:
        return response.status, await response.json()


async def scrape(session: aiohttp.ClientSession, url: str, path: str = "/metrics") -> str:
    async with session.get(f"{url}{path}") as response:
        assert response.status == 200
        return await response.text()


def parsed(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def value(text: str, family: str, sample: str | None = None) -> float:
    samples = parsed(text)[family].samples
    return sum(s.value for s in samples if s.name == (sample or family))


@pytest.mark.parametrize("server", sorted(SERVERS))
async def test_each_mimic_serves_the_surface_read_at_the_source(
    start: ServerFactory, server: str
) -> None:
    url = await start(server)
    spec = surface(server)
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            if spec.llm:
                assert (await complete(session, url))[0] == 200
            else:
                assert await infer(session, url) == 200
        # and one mistake, so families that count failures (TGI's) have a series
        if spec.llm:
            assert (await complete(session, url, max_tokens=0))[0] == 400
        else:
            async with session.post(f"{url}/v2/models/{MODEL}/infer", data=b"{") as response:
                assert response.status == 400
        async with session.get(f"{url}/metrics") as response:
            content_type = response.headers["Content-Type"]
            text = await response.text()
        if server == "tfserving":
            assert parsed(await scrape(session, url, "/monitoring/prometheus/metrics"))
    assert content_type.startswith("text/plain")
    families = parsed(text)
    for family in spec.families:
        name = family.name.replace("/", ":")
        if family.kind == "counter":
            name = name.removesuffix("_total")
        assert name in families, f"{server}: {name} missing"
        found = families[name]
        assert found.type == family.kind, name
        expected_labels = set(family.labels)
        if spec.library == "prometheus_client_multiprocess" and family.multiprocess_mode == "all":
            expected_labels.add("pid")
        for sample in found.samples:
            assert set(sample.labels) - {"le", "quantile"} == expected_labels, sample
        if family.kind == "histogram":
            bounds = [float(s.labels["le"]) for s in found.samples if s.name.endswith("_bucket")][
                : len(buckets_for(family, FAST_TOKENS.max_model_len)) + 1
            ]
            wanted = [*buckets_for(family, FAST_TOKENS.max_model_len), math.inf]
            assert bounds == pytest.approx(wanted, rel=1e-5), name


async def test_time_to_first_token_and_kv_use_move_with_load(start: ServerFactory) -> None:
    url = await start("vllm", max_concurrency=2, max_queue=100)
    ttft = "vllm:time_to_first_token_seconds"
    async with aiohttp.ClientSession() as session:
        for _ in range(4):  # one at a time: no wait for a slot
            assert (await complete(session, url))[0] == 200
        idle = await scrape(session, url)
        idle_ttft = value(idle, ttft, ttft + "_sum") / value(idle, ttft, ttft + "_count")
        assert value(idle, "vllm:kv_cache_usage_perc") == 0.0

        burst = [asyncio.ensure_future(complete(session, url)) for _ in range(20)]
        busiest_kv = busiest_queue = 0.0
        while not all(task.done() for task in burst):
            during = await scrape(session, url)
            busiest_kv = max(busiest_kv, value(during, "vllm:kv_cache_usage_perc"))
            busiest_queue = max(busiest_queue, value(during, "vllm:num_requests_waiting"))
            await asyncio.sleep(0.005)
        assert all(task.result()[0] == 200 for task in burst)
        after = await scrape(session, url)
    burst_ttft = (value(after, ttft, ttft + "_sum") - value(idle, ttft, ttft + "_sum")) / 20
    assert burst_ttft > 2 * idle_ttft  # the wait for one of two slots comes before the token
    assert busiest_queue > 0 and busiest_kv > 0.0
    assert value(after, "vllm:kv_cache_usage_perc") == 0.0  # freed when the sequences end
    assert value(after, "vllm:request_success", "vllm:request_success_total") == 24


async def test_completions_answer_in_the_openai_shape(start: ServerFactory) -> None:
    url = await start("tgi")
    async with aiohttp.ClientSession() as session:
        status, answer = await complete(session, url, max_tokens=12)
        assert status == 200
        assert answer["object"] == "text_completion" and answer["id"].startswith("cmpl-")
        assert answer["model"] == MODEL and isinstance(answer["created"], int)
        (choice,) = answer["choices"]
        usage = answer["usage"]
        assert usage["prompt_tokens"] == 20  # the prompt's words
        assert 1 <= usage["completion_tokens"] <= 12
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
        assert choice["finish_reason"] in ("stop", "length")
        if choice["finish_reason"] == "length":
            assert usage["completion_tokens"] == 12
        status, error = await complete(session, url, model="other")
        assert (status, error["error"]["param"]) == (404, "model")
        status, error = await complete(session, url, stream=True)
        assert (status, error["error"]["param"]) == (400, "stream")
        assert await infer(session, url) == 200  # the v2 route answers beside it
        text = await scrape(session, url)
    assert value(text, "tgi_request_count", "tgi_request_count_total") == 4
    assert value(text, "tgi_request_success", "tgi_request_success_total") == 2
    failures = parsed(text)["tgi_request_failure"].samples
    assert {s.labels["err"]: s.value for s in failures} == {"validation": 1.0}


async def test_without_mimic_the_server_is_unchanged(start: ServerFactory) -> None:
    url = await start(None)
    async with aiohttp.ClientSession() as session:
        status, answer = await complete(session, url)
        assert status == 404 and "error" in answer
        assert await infer(session, url) == 200
        text = await scrape(session, url)
    assert "inference_queue_depth" in parsed(text)
    assert value(text, "inference_requests", "inference_requests_total") == 1
    assert "vllm:" not in text and "/v1/completions" not in text


async def test_the_load_generator_drives_completions(start: ServerFactory) -> None:
    url = await start("sglang", max_concurrency=8)
    config = LoadConfig(
        urls=(url,),
        model_name=MODEL,
        profile=profiles.ConstantProfile(40.0),
        duration_seconds=0.5,
        seed=5,
        max_requests=12,
        report_interval_seconds=0,
        api="completions",
        prompt_tokens=30,
        max_tokens=8,
    )
    report = await run_load(config)
    assert (report.ok, dict(report.errors)) == (report.sent, {})
    async with aiohttp.ClientSession() as session:
        text = await scrape(session, url)
    assert value(text, "sglang:num_requests", "sglang:num_requests_total") == report.ok
    generated = value(text, "sglang:generation_tokens", "sglang:generation_tokens_total")
    assert 0 < generated <= 8 * report.ok
