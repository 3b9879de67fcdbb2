"""The relay's command line and ``--prometheus-preset``: the presets by name, ``generic`` by
the names of its series, and one line for every mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.__main__ import build_parser, server_config
from adapter.catalog import Signal
from adapter.client import relay
from adapter.prometheus import preset_flags, presets
from adapter.prometheus.sources import Gauge, Histogram


@pytest.fixture
def token(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text("t0ken\n")
    return path


def relay_config(token: Path, *flags: str) -> relay.RelayConfig:
    args = build_parser().parse_args(
        [
            "relay",
            "--scrape=http://127.0.0.1:8000/metrics",
            "--adapter-url=https://adapter.metrics.svc:6443",
            f"--push-token-file={token}",
            "--pod-name=vllm-0",
            "--namespace=llm",
            *flags,
        ]
    )
    return relay.config_from_args(args)


def test_a_preset_by_name(token: Path) -> None:
    config = relay_config(token, "--preset=vllm", "--push-interval=2s", "--deployment=vllm")
    assert config.preset is presets.VLLM
    assert config.scrape_timeout_seconds == 2.0  # the push interval
    assert config.push.identity.deployment == "vllm"
    assert (
        relay_config(token, "--preset=tgi", "--scrape-timeout=500ms").scrape_timeout_seconds == 0.5
    )


def test_generic_is_made_of_the_names_given(token: Path) -> None:
    config = relay_config(
        token,
        "--preset=generic",
        "--queue-gauge=my_waiting",
        "--running-gauge=my_running",
        "--latency-histogram=my_latency_ms",
        "--latency-unit=ms",
    )
    preset = config.preset
    assert preset.name == "generic"
    concurrency, latency = preset.inputs[Signal.CONCURRENCY], preset.inputs[Signal.LATENCY]
    assert isinstance(concurrency, Gauge) and isinstance(latency, Histogram)
    assert [s.name for s in concurrency.series] == ["my_waiting", "my_running"]
    assert (latency.name, latency.unit_seconds) == ("my_latency_ms", 1e-3)
    assert "--ttft-histogram" in preset.lacks[Signal.TIME_TO_FIRST_TOKEN]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--preset=generic"], "--preset generic needs the names of its series: --queue-gauge"),
        (["--preset=vllm", "--queue-gauge=q"], "--queue-gauge: only with --preset generic"),
        (["--preset=generic", "--queue-gauge=q", "--latency-unit=h"], "--latency-unit 'h'"),
        (["--preset=vllm", "--scrape-timeout=0s"], "--scrape-timeout must be positive"),
    ],
)
def test_mistakes_are_one_line(token: Path, flags: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        relay_config(token, *flags)


def test_the_relay_needs_an_adapter_and_a_url(token: Path) -> None:
    args = build_parser().parse_args(
        ["relay", "--scrape=127.0.0.1:8000/metrics", "--preset=vllm", "--pod-name=p"]
    )
    with pytest.raises(ValueError, match="must be an http:// or https:// URL"):
        relay.config_from_args(args)
    args.scrape = "http://127.0.0.1:8000/metrics"
    with pytest.raises(ValueError, match="at least one --adapter-url"):
        relay.config_from_args(args)


def test_serve_reads_prometheus_with_a_preset() -> None:
    def config(*flags: str):
        args = build_parser().parse_args(
            ["serve", "--source=prometheus", "--prometheus-url=http://prometheus:9090", *flags]
        )
        return server_config(args, {}).prometheus

    assert config().preset == "model-server" and config().validate() == []
    assert config("--prometheus-preset=triton").preset == "triton"
    generic = config("--prometheus-preset=generic", "--prometheus-kv-gauge=kv")
    assert generic.generic_series == {"kv_gauge": "kv"} and generic.validate() == []
    assert config("--prometheus-preset=generic").validate() == [
        "--prometheus-preset generic needs the names of its series: --prometheus-queue-gauge,"
        " --prometheus-running-gauge, --prometheus-requests-counter,"
        " --prometheus-latency-histogram, --prometheus-ttft-histogram, --prometheus-kv-gauge"
    ]
    built = preset_flags.build("generic", generic.generic_series, "prometheus-")
    assert built.served() == (
        "inference_kv_cache_utilization",
        "inference_kv_cache_utilization_max",
    )
