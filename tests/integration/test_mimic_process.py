"""The real ``model-server --mimic`` process: flags to a TGI-shaped pod that generates tokens."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import start_model_server, stop_process, wait_until_ready

pytestmark = pytest.mark.integration


async def test_a_mimic_process_serves_completions_and_the_server_s_metrics(tmp_path: Path) -> None:
    server = start_model_server(
        tmp_path, "--model-name", "m", "--mimic", "tgi", "--time-per-output-token", "1ms",
        "--drain-timeout", "5s",
    )  # fmt: skip
    try:
        await asyncio.to_thread(wait_until_ready, server)
        async with aiohttp.ClientSession() as session:
            body = {"model": "m", "prompt": "one two three", "max_tokens": 5}
            async with session.post(f"{server.url}/v1/completions", json=body) as response:
                assert response.status == 200
                answer = await response.json()
            async with session.get(f"{server.url}/metrics") as response:
                text = await response.text()
    finally:
        assert stop_process(server.process) == 0
    assert answer["usage"]["prompt_tokens"] == 3
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["tgi_request_success"].samples[0].value == 1
    assert families["tgi_request_duration"].type == "histogram"
    assert "inference_queue_depth" not in families  # the pod's own metrics give way
    assert "tgi metrics" in server.log()
