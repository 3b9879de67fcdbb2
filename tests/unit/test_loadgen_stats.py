"""The load generator's pure parts: wire format, statistics, balancing, report and flags."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model_server import loadgen
from model_server.loadgen import (
    Balancer,
    LatencySummary,
    LatenessSummary,
    LoadError,
    LoadReport,
    ModelInput,
    TargetCount,
)
from model_server.profiles import ConstantProfile, PiecewiseProfile, StepProfile

METADATA = {
    "name": "m",
    "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}],
    "outputs": [{"name": "output", "datatype": "FP32", "shape": [-1, 2]}],
}


def test_metadata_batch_dimension_becomes_one() -> None:
    assert loadgen.parse_metadata(METADATA) == (ModelInput("input", "FP32", (1, 4)),)


def test_metadata_with_several_inputs_and_fixed_shapes() -> None:
    metadata = {
        "inputs": [
            {"name": "a", "datatype": "INT64", "shape": [2, 3]},
            {"name": "b", "datatype": "BOOL", "shape": [-1]},
        ]
    }
    assert loadgen.parse_metadata(metadata) == (
        ModelInput("a", "INT64", (2, 3)),
        ModelInput("b", "BOOL", (1,)),
    )


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ([], "no 'inputs' list"),
        ({"name": "m"}, "no 'inputs' list"),
        ({"inputs": []}, "lists no inputs"),
        ({"inputs": ["x"]}, "input 0 is not an object"),
        ({"inputs": [{"datatype": "FP32", "shape": [1]}]}, "lacks a name"),
        ({"inputs": [{"name": "x", "datatype": "FP32", "shape": "1,4"}]}, "no integer shape"),
        ({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, True]}]}, "no integer shape"),
        ({"inputs": [{"name": "x", "datatype": "BYTES", "shape": [1]}]}, "unsupported"),
        ({"inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, -1]}]}, "--input-size"),
    ],
)
def test_unusable_metadata(metadata: object, message: str) -> None:
    with pytest.raises(LoadError, match=message):
        loadgen.parse_metadata(metadata)


def test_infer_body_has_the_shape_and_type_of_each_input() -> None:
    inputs = (ModelInput("input", "FP32", (1, 4)), ModelInput("ids", "INT32", (2, 3)))
    body = json.loads(loadgen.infer_body(inputs, np.random.default_rng(0)))
    first, second = body["inputs"]
    assert first["name"] == "input"
    assert first["shape"] == [1, 4]
    assert first["datatype"] == "FP32"
    assert len(first["data"]) == 4
    assert all(isinstance(value, float) for value in first["data"])
    assert second["shape"] == [2, 3]
    assert len(second["data"]) == 6
    assert all(isinstance(value, int) for value in second["data"])


def test_infer_body_is_reproducible_from_the_seed() -> None:
    inputs = (ModelInput("input", "FP32", (1, 8)),)
    first = loadgen.infer_body(inputs, np.random.default_rng(3))
    assert first == loadgen.infer_body(inputs, np.random.default_rng(3))
    assert first != loadgen.infer_body(inputs, np.random.default_rng(4))


@pytest.mark.parametrize(
    ("status", "kind"),
    [(200, None), (201, "http_201"), (429, "http_429"), (503, "http_503"), (500, "http_500")],
)
def test_classify_status(status: int, kind: str | None) -> None:
    assert loadgen.classify_status(status) == kind


def test_latency_summary() -> None:
    summary = loadgen.summarize_latencies([float(v) for v in range(1, 101)])
    assert summary is not None
    assert (summary.mean, summary.p50, summary.max) == (50.5, 50.5, 100.0)
    assert summary.p90 == pytest.approx(90.1)
    assert summary.p99 == pytest.approx(99.01)


def test_latency_summary_of_nothing_is_none() -> None:
    assert loadgen.summarize_latencies([]) is None


def test_lateness_summary_and_behind_flag() -> None:
    on_time = loadgen.summarize_lateness([0.001] * 99 + [0.005])
    assert on_time.max == 0.005
    assert not on_time.behind
    late = loadgen.summarize_lateness([0.001] * 90 + [0.5] * 10)
    assert late.p99 == pytest.approx(0.5)
    assert late.behind
    assert loadgen.summarize_lateness([]) == LatenessSummary(0.0, 0.0, 0.0)


def test_round_robin_cycles_whatever_is_outstanding() -> None:
    balancer = Balancer(3, "round-robin")
    picks = [balancer.acquire() for _ in range(7)]
    assert picks == [0, 1, 2, 0, 1, 2, 0]
    assert balancer.outstanding == [3, 2, 2]
    assert balancer.total_outstanding == 7


def test_least_outstanding_avoids_busy_targets() -> None:
    balancer = Balancer(2, "least-outstanding")
    assert balancer.acquire() == 0
    assert balancer.acquire() == 1
    balancer.release(1)  # target 1 answered quickly, target 0 has not
    assert balancer.acquire() == 1
    balancer.release(1)
    assert balancer.acquire() == 1
    assert balancer.outstanding == [1, 1]


def test_least_outstanding_breaks_ties_round_robin() -> None:
    balancer = Balancer(3, "least-outstanding")
    picks = []
    for _ in range(6):
        target = balancer.acquire()
        picks.append(target)
        balancer.release(target)
    assert picks == [0, 1, 2, 0, 1, 2]
    assert balancer.total_outstanding == 0


def test_balancer_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        Balancer(0, "round-robin")
    with pytest.raises(ValueError):
        Balancer(2, "random")  # type: ignore[arg-type]


def report(**changes: object) -> LoadReport:
    fields: dict[str, object] = {
        "sent": 100,
        "ok": 97,
        "errors": {"timeout": 1, "http_503": 2},
        "window_seconds": 2.0,
        "elapsed_seconds": 2.1,
        "target_rps": 50.0,
        "latency": LatencySummary(0.006, 0.005, 0.008, 0.012, 0.02),
        "lateness": LatenessSummary(0.0005, 0.002, 0.004),
        "max_outstanding": 4,
        "targets": (TargetCount("http://a", 50, 49), TargetCount("http://b", 50, 48)),
        "seed": 7,
    }
    fields.update(changes)
    return LoadReport(**fields)  # type: ignore[arg-type]


def test_report_json_has_the_documented_fields() -> None:
    document = json.loads(json.dumps(report().to_json()))
    assert document["sent"] == 100
    assert document["ok"] == 97
    assert document["errors"] == {"http_503": 2, "timeout": 1}
    assert list(document["errors"]) == ["http_503", "timeout"]  # sorted
    assert document["achieved_rps"] == 50.0
    assert document["ok_rps"] == 48.5
    assert document["latency_seconds"] == {
        "mean": 0.006,
        "p50": 0.005,
        "p90": 0.008,
        "p99": 0.012,
        "max": 0.02,
    }
    assert document["lateness_seconds"] == {"p50": 0.0005, "p99": 0.002, "max": 0.004}
    assert document["behind_schedule"] is False
    assert document["targets"][1] == {"url": "http://b", "sent": 50, "ok": 48}
    assert document["seed"] == 7


def test_report_json_without_ok_requests_has_null_latencies() -> None:
    document = report(ok=0, latency=None, window_seconds=0.0).to_json()
    assert document["latency_seconds"] == dict.fromkeys(("mean", "p50", "p90", "p99", "max"))
    assert document["achieved_rps"] == 0.0


def test_summary_text() -> None:
    text = loadgen.format_summary(report())
    assert "sent 100 in 2.00s: 50.0 req/s (target 50.0 req/s), ok 97 (48.5/s)" in text
    assert "errors: http_503=2 timeout=1" in text
    assert "p99 12.0ms" in text
    assert "http://b sent 50 ok 48" in text
    assert "WARNING" not in text


def test_summary_warns_when_behind_schedule() -> None:
    text = loadgen.format_summary(report(lateness=LatenessSummary(0.01, 0.2, 0.3), latency=None))
    assert "WARNING: the generator fell behind its schedule (p99 lateness 200.0ms" in text
    assert "latency: no ok requests" in text


def parse_flags(*flags: str) -> loadgen.LoadConfig:
    parser = loadgen.build_parser()
    return loadgen.config_from_args(parser.parse_args(list(flags)), parser)


def test_flags_become_a_config() -> None:
    config = parse_flags(
        "--url",
        "http://127.0.0.1:8080/",
        "--url",
        "http://127.0.0.1:8081",
        "--model-name",
        "m",
        "--rate",
        "50",
        "--duration",
        "1m",
        "--profile",
        "step:30s,200",
        "--timeout",
        "500ms",
        "--report-interval",
        "0",
        "--max-requests",
        "10",
        "--balance",
        "least-outstanding",
        "--seed",
        "9",
    )
    assert config.urls == ("http://127.0.0.1:8080", "http://127.0.0.1:8081")
    assert config.profile == StepProfile(50.0, 30.0, 200.0)
    assert config.duration_seconds == 60.0
    assert config.timeout_seconds == 0.5
    assert config.report_interval_seconds == 0.0
    assert config.max_requests == 10
    assert config.balance == "least-outstanding"
    assert config.seed == 9


def test_flag_defaults() -> None:
    config = parse_flags("--url", "http://h:1", "--model-name", "m")
    assert config.profile == ConstantProfile(10.0)
    assert config.duration_seconds == 10.0
    assert config.concurrency_limit == 1000
    assert config.balance == "round-robin"
    assert config.max_requests is None
    assert config.input_size is None
    assert 0 <= config.seed < 2**32


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--rate", "-1"], "argument --rate: must be a positive number, not '-1'"),
        (["--rate", "0"], "argument --rate: must be a positive number"),
        (["--rate", "fast"], "argument --rate: 'fast' is not a number"),
        (["--duration", "10"], 'argument --duration: invalid duration "10": missing unit'),
        (["--duration", "0s"], "argument --duration: must be longer than 0"),
        (["--timeout=-1s"], "argument --timeout: invalid duration"),
        (["--profile", "nope"], "argument --profile: invalid profile 'nope': unknown kind"),
        (["--profile", "step:1s,0", "--rate", "1e-300"], None),  # valid: tiny but positive
        (["--concurrency-limit", "0"], "argument --concurrency-limit: must be a positive"),
        (["--max-requests", "x"], "argument --max-requests: 'x' is not an integer"),
        (["--balance", "random"], "argument --balance: invalid choice"),
        (["--url", "127.0.0.1:8080"], "is not an http(s) base URL"),
    ],
)
def test_bad_flags_exit_2_with_one_line(
    flags: list[str], message: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--model-name", "m", "--max-requests", "1", "--report-interval", "0"]
    if "--url" not in flags:
        base += ["--url", "http://127.0.0.1:9"]
    if message is None:
        parse_flags(*base, *flags)  # no error
        return
    assert loadgen.main([*base, *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("model-server loadgen: error: ")
    assert message in err


def test_a_profile_that_never_sends_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rates = tmp_path / "zero.csv"
    rates.write_text("time_seconds,rate\n0,0\n")
    flags = ["--url", "http://127.0.0.1:9", "--model-name", "m", "--profile", f"csv:{rates}"]
    assert loadgen.main(flags) == 2
    assert "never sends" in capsys.readouterr().err


def test_a_csv_profile_is_read_from_disk(tmp_path: Path) -> None:
    rates = tmp_path / "rates.csv"
    rates.write_text("time_seconds,rate\n0,5\n10,50\n")
    config = parse_flags("--url", "http://h:1", "--model-name", "m", "--profile", f"csv:{rates}")
    assert config.profile == PiecewiseProfile((0.0, 10.0), (5.0, 50.0))


def test_help_documents_the_profile_grammar(capsys: pytest.CaptureFixture[str]) -> None:
    assert loadgen.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "usage: model-server loadgen" in out
    assert "step:AT,RATE2" in out
    assert "csv:PATH" in out


def test_slo_violations_count_slow_and_unserved_requests() -> None:
    assert report().slo_violation_share is None
    with_slo = report(over_slo=5)  # 100 sent, 97 ok: 5 slow + 3 not served
    assert with_slo.slo_violation_share == pytest.approx(0.08)
    assert with_slo.to_json()["over_slo"] == 5
