"""Each server's text written as its own metrics library writes it (facts read at the source).

The literal strings below come from the sources (see ``model_server.mimic.surfaces``): TGI's
first duration bound, Triton's ``_count`` before the buckets, TorchServe's trailing comma, TF
Serving's 6-digit bounds. They are written out here, not read back from the table, so a wrong
edit of the table fails a test.
"""

from __future__ import annotations

import math
import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from model_server.mimic import SERVERS, surface
from model_server.mimic.exposition import (
    absl_six_digits,
    cpp_double,
    java_double,
    render,
    rust_f64,
)
from model_server.mimic.recorder import Answer, Gauges, Recorder, Served
from model_server.mimic.surfaces import buckets_for, one_two_five

CREATED = 1_790_000_000.0


def served(queue: float = 0.05, compute: float = 0.25) -> Served:
    return Served(
        queue_seconds=queue,
        compute_seconds=compute,
        prompt_tokens=120,
        output_tokens=21,
        max_tokens=64,
        prefill_seconds=0.012,
        decode_seconds=compute - 0.012,
        tpot_seconds=(compute - 0.012) / 20,
        finish_reason="stop",
    )


def text_after_traffic(server: str, shed: int = 1) -> str:
    recorder = Recorder(surface(server), model="m", hostname="h", pid=7, clock=lambda: CREATED)
    gauges = Gauges(waiting=3, running=2, kv_usage=0.25, kv_used_tokens=4096,
                    kv_capacity_tokens=16384, kv_reserved_tokens=900, load_seconds=2.5)  # fmt: skip
    for _ in range(2):
        recorder.arrive()
        recorder.admit(gauges)
        recorder.answer(Answer("ok", 200, "POST", "/v1/completions", 0.3, 100, 400, served()))
    for _ in range(shed):
        recorder.arrive()
        recorder.answer(Answer("shed", 503, "POST", "/v1/completions", 0.001, 100, 80))
    return render(recorder.snapshot(gauges))


def lines_of(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(name)]


@pytest.mark.parametrize(
    ("value", "rust", "cpp", "java", "absl"),
    [
        (3.0, "3", "3", "3.0", "3"),
        (0.25, "0.25", "0.25", "0.25", "0.25"),
        (1234567.0, "1234567", "1234567", "1234567.0", "1.23457e+06"),
        (12345678.0, "12345678", "12345678", "1.2345678E7", "1.23457e+07"),
        (0.0001, "0.0001", "0.0001", "1.0E-4", "0.0001"),
        (0.0, "0", "0", "0.0", "0"),
        (1e21, "1000000000000000000000", "1e+21", "1.0E21", "1e+21"),
    ],
)
def test_number_formats(value: float, rust: str, cpp: str, java: str, absl: str) -> None:
    assert (rust_f64(value), cpp_double(value), java_double(value), absl_six_digits(value)) == (
        rust,
        cpp,
        java,
        absl,
    )


def test_bucket_bounds_from_the_sources() -> None:
    vllm, tgi, triton, tfs = (surface(s) for s in ("vllm", "tgi", "triton", "tfserving"))
    assert vllm.family("vllm:time_to_first_token_seconds").buckets[:3] == (0.001, 0.005, 0.01)
    assert vllm.family("vllm:time_to_first_token_seconds").buckets[-1] == 2560.0
    assert vllm.family("vllm:e2e_request_latency_seconds").buckets[0] == 0.3
    assert one_two_five(4096) == (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000)
    assert buckets_for(vllm.family("vllm:request_prompt_tokens"), 4096)[-1] == 2000.0
    duration = tgi.family("tgi_request_duration").buckets
    assert len(duration) == 35
    assert math.isclose(duration[0], 0.00015) and math.isclose(duration[-1], 145.61, rel_tol=1e-4)
    inputs = buckets_for(tgi.family("tgi_request_input_length"), 4096)
    assert (len(inputs), inputs[0], inputs[-1]) == (100, 40.95, (4095 / 100.0) * 100)
    assert triton.family("nv_inference_first_response_histogram_ms").buckets == (
        100,
        500,
        2000,
        5000,
    )
    latency = tfs.family("/tensorflow/serving/request_latency").buckets
    assert (len(latency), latency[:3]) == (33, (10.0, 18.0, 32.4))
    assert math.isclose(latency[-1], 10 * 1.8**32)


def test_every_family_label_has_a_value() -> None:
    """A label is a constant of the surface, a request label or the outcome label."""
    from model_server.mimic.surfaces import REQUEST_LABELS

    for server in SERVERS.values():
        for family in server.families:
            for label in family.labels:
                known = label in server.constants or label in family.fixed
                known = known or label in REQUEST_LABELS or label == family.outcome_label
                assert known, f"{server.server} {family.name} label {label}"


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_the_text_parses_with_prometheus_client(server: str) -> None:
    families = {f.name: f for f in text_string_to_metric_families(text_after_traffic(server))}
    for family in surface(server).families:
        parsed_name = family.name.replace("/", ":")
        if family.kind == "counter":
            parsed_name = parsed_name.removesuffix("_total")
        if family.kind == "gauge" and family.feed.startswith("last_") and server != "torchserve":
            continue
        assert parsed_name in families, parsed_name
        assert families[parsed_name].type == family.kind


def test_vllm_writes_prometheus_client_counters_with_total_and_created() -> None:
    text = text_after_traffic("vllm")
    assert (
        'vllm:request_success_total{engine="0",finished_reason="stop",model_name="m"} 2.0' in text
    )
    assert (
        'vllm:request_success_total{engine="0",finished_reason="abort",model_name="m"} 0.0' in text
    )
    created = 'vllm:request_success_created{engine="0",finished_reason="stop",model_name="m"}'
    assert f"{created} 1.79e+09" in text
    assert "# TYPE vllm:e2e_request_latency_seconds_created gauge" in text
    # 0.3 s falls in le="0.3": a bound is inclusive
    assert 'vllm:e2e_request_latency_seconds_bucket{engine="0",le="0.3",model_name="m"} 2.0' in text
    assert 'http_requests_total{handler="/v1/completions",method="POST",status="5xx"} 1.0' in text


def test_sglang_writes_multiprocess_text() -> None:
    text = text_after_traffic("sglang")
    assert "_created" not in text
    pid_line = lines_of(text, "sglang:num_retracted_reqs{")[0]
    assert 'pid="7"' in pid_line and 'moe_ep_rank="0"' in pid_line
    ttft = lines_of(text, "sglang:time_to_first_token_seconds")
    assert ttft[0].startswith("sglang:time_to_first_token_seconds_sum")
    assert ttft[-1].startswith("sglang:time_to_first_token_seconds_count")
    assert 'le="0.0"' in lines_of(text, "sglang:queue_time_seconds_bucket")[0]


def test_tgi_writes_metrics_rs_text() -> None:
    text = text_after_traffic("tgi")
    assert not re.search(r"^\w+_(total|created)[{ ]", text, re.M)
    assert "tgi_request_success 2\n\n" in text
    assert "tgi_request_count 3\n" in text
    assert 'tgi_request_failure{err="overloaded"} 1\n' in text
    assert "# TYPE tgi_batch_max_total_tokens gauge\ntgi_batch_max_total_tokens 16384\n" in text
    assert "# HELP tgi_batch_max_total_tokens" not in text
    assert 'tgi_request_duration_bucket{le="0.00015000000000000001"} 0' in text
    assert "tgi_queue_size 3\n" in text


def test_a_fresh_tgi_shows_only_what_it_sets_at_start_up() -> None:
    recorder = Recorder(surface("tgi"), model="m", clock=lambda: CREATED)
    text = render(recorder.snapshot(Gauges(kv_capacity_tokens=16384)))
    names = {f.name for f in text_string_to_metric_families(text)}
    assert names == {"tgi_batch_max_total_tokens"}


def test_triton_writes_prometheus_cpp_text() -> None:
    text = text_after_traffic("triton")
    histogram = lines_of(text, "nv_inference_first_response_histogram_ms_")
    assert histogram[0] == 'nv_inference_first_response_histogram_ms_count{model="m",version="1"} 2'
    assert histogram[1].startswith("nv_inference_first_response_histogram_ms_sum")
    assert histogram[2] == (
        'nv_inference_first_response_histogram_ms_bucket{model="m",version="1",le="100"} 0'
    )
    assert 'nv_inference_request_failure{model="m",reason="REJECTED",version="1"} 1' in text
    assert 'nv_inference_request_failure{model="m",reason="CANCELED",version="1"} 0' in text
    assert 'nv_inference_request_duration_us{model="m",version="1"} 600000\n' in text
    assert not re.search(r"^\w+_total[{ ]", text, re.M)


def test_torchserve_writes_simpleclient_0_9_text() -> None:
    text = text_after_traffic("torchserve")
    line = 'ts_inference_requests_total{model_name="m",model_version="default",hostname="h",} 3.0'
    assert line in text
    assert 'Requests5XX{Level="Host",Hostname="h",} 1.0' in text
    assert "# HELP Requests4XX Torchserve prometheus counter metric with unit: Count\n" in text
    assert not lines_of(text, "Requests4XX{")  # no 4xx yet: HELP and TYPE only
    assert "_created" not in text and "ts_inference_latency_microseconds_total" not in text


def test_tfserving_writes_its_own_exporter_text() -> None:
    text = text_after_traffic("tfserving")
    assert "# HELP" not in text
    assert ':tensorflow:serving:request_count{model_name="m",status="OK"} 2\n' in text
    assert ':tensorflow:serving:request_count{model_name="m",status="UNAVAILABLE"} 1\n' in text
    buckets = lines_of(text, ":tensorflow:serving:request_latency_bucket")
    assert len(buckets) == 34
    assert 'le="340.122"' in text and 'le="3570.47"' in text  # 6 significant digits
    assert buckets[-1].endswith('le="+Inf"} 2')
    labels = 'model_name="m",API="Predict",entrypoint="REST"'
    assert f":tensorflow:serving:request_latency_sum{{{labels}}} 600000" in text


def test_a_missing_family_is_left_out_and_an_unknown_one_refused() -> None:
    recorder = Recorder(surface("vllm"), model="m", clock=lambda: CREATED)
    snapshot = recorder.snapshot(Gauges()).without("vllm:e2e_request_latency_seconds")
    assert "vllm:e2e_request_latency_seconds" not in render(snapshot)
    with pytest.raises(KeyError, match="no families"):
        snapshot.without("vllm:nope")
